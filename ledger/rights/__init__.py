"""Data rights: grant typed data (EIP-712), signature checks and the rules a job must satisfy."""

__all__: list[str] = []
