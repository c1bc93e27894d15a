"""Everything that talks to an EVM chain: artifacts, the embedded anvil node, and (later) the
web3 client, transaction sender, bindings and indexer."""

__all__: list[str] = []
