// Builds OpenZeppelin StandardMerkleTrees with @openzeppelin/merkle-tree for tests/unit/test_merkle.py.
// stdin: [{"values": [...], "encoding": [...]}, ...]; stdout: [{"root", "proofs", "proofsByValue", "dump"}, ...]
'use strict';
const { StandardMerkleTree } = require('@openzeppelin/merkle-tree');

const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = cases.map(({ values, encoding }) => {
  const tree = StandardMerkleTree.of(values, encoding);
  const loaded = StandardMerkleTree.load(JSON.parse(JSON.stringify(tree.dump())));
  return {
    root: tree.root,
    proofs: values.map((_, i) => tree.getProof(i)),
    proofsByValue: values.map((v) => loaded.getProof(v)),
    dump: tree.dump(),
  };
});
process.stdout.write(JSON.stringify(out));
