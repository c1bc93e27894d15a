"""Request and response bodies of the API (pydantic), with the examples OpenAPI shows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ErrorDetail",
    "ErrorResponse",
    "GrantSubmission",
    "GrantTermsIn",
    "HealthOut",
    "JobCreate",
    "LoginIn",
    "LoginOut",
    "NonceOut",
    "PaymentsIn",
    "TxOut",
    "VerifyIn",
]

ADDRESS = r"^0x[0-9a-fA-F]{40}$"
HASH = r"^0x[0-9a-fA-F]{64}$"
EXAMPLE_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
EXAMPLE_HASH = "0x" + "ab" * 32


class ErrorDetail(BaseModel):
    """What went wrong: a stable code, a sentence naming the field and the rule, the field."""

    code: str = Field(examples=["siwe_nonce"])
    message: str = Field(examples=["nonce must be one this service issued, unused and unexpired"])
    field: str | None = Field(default=None, examples=["nonce"])


class ErrorResponse(BaseModel):
    """Every error response."""

    error: ErrorDetail


class NonceOut(BaseModel):
    """A sign-in nonce, and the message to sign if an address was given."""

    nonce: str = Field(examples=["4f0c2b9d8e7a6f5e4d3c2b1a09f8e7d6"])
    expires_at: str = Field(examples=["2026-11-30T03:10:00Z"])
    domain: str = Field(examples=["127.0.0.1:8000"])
    uri: str = Field(examples=["http://127.0.0.1:8000"])
    chain_id: int = Field(examples=[31337])
    message: str | None = Field(default=None, description="The EIP-4361 text to sign.")


class LoginIn(BaseModel):
    """A signed EIP-4361 message."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(max_length=4096, description="The EIP-4361 message text, as signed.")
    signature: str = Field(
        max_length=4100, pattern=r"^0x[0-9a-fA-F]+$", description="personal_sign signature."
    )


class LoginOut(BaseModel):
    """A session: also set as the HttpOnly ``ledger_session`` cookie."""

    address: str = Field(examples=[EXAMPLE_ADDRESS])
    token: str = Field(description="Bearer token (same session as the cookie).")
    expires_at: str = Field(examples=["2026-11-30T15:00:00Z"])


class GrantTermsIn(BaseModel):
    """Terms of a grant to sign; the grantor is the signed-in owner. Integers may be decimal
    strings (uint256 exceed JavaScript's safe integers). Unset times default from the chain's
    clock: valid from now, for 30 days, signature deadline in one hour."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "datasetId": "1",
                    "grantee": EXAMPLE_ADDRESS,
                    "algorithm": "dp_mean",
                    "purpose": "research.oncology",
                    "maxUses": 5,
                    "epsilonBudget": "2000000",
                    "pricePerUse": "1000000000000000",
                }
            ]
        },
    )

    datasetId: int | str
    grantee: str = Field(pattern=ADDRESS)
    algorithm: str = Field(
        default="any",
        max_length=100,
        description="A catalog name (e.g. dp_mean), a 0x code hash, or 'any' catalog algorithm.",
    )
    purpose: str = Field(
        max_length=100, description="A purpose label (hashed with keccak256) or a 0x hash."
    )
    validFrom: int | str | None = None
    validUntil: int | str | None = None
    maxUses: int | str = 1
    epsilonBudget: int | str = 1_000_000
    paymentToken: str = Field(default="0x" + "00" * 20, pattern=ADDRESS)
    pricePerUse: int | str = 0
    nonce: int | str | None = None
    deadline: int | str | None = None


class GrantSubmission(BaseModel):
    """A grant signed with ``eth_signTypedData_v4``: the typed data (or just its ``message``)
    and the signature."""

    model_config = ConfigDict(extra="forbid")

    typed_data: dict[str, Any] = Field(description="The typed data as returned, or its message.")
    signature: str = Field(max_length=4100, pattern=r"^0x[0-9a-fA-F]+$")


class TxOut(BaseModel):
    """An unsigned transaction for the wallet to send (``eth_sendTransaction``)."""

    chainId: int = Field(examples=[31337])
    from_: str = Field(alias="from", examples=[EXAMPLE_ADDRESS])
    to: str = Field(examples=[EXAMPLE_ADDRESS])
    data: str = Field(examples=["0x..."])
    value: str = Field(examples=["0"], description="Wei, decimal string.")

    model_config = ConfigDict(populate_by_name=True)


class DatasetIn(BaseModel):
    """A dataset a job computes on (version None: the latest)."""

    datasetId: int | str
    version: int | None = Field(default=None, ge=1)


class JobCreate(BaseModel):
    """A job request; the consumer is the signed-in address and pays the escrows."""

    model_config = ConfigDict(extra="forbid")

    grants: list[dict[str, Any]] = Field(min_length=1, max_length=16)
    algorithm: str = Field(max_length=100, examples=["dp_mean"])
    params: dict[str, Any] = Field(
        examples=[{"column": "age", "bounds": {"lo": 0, "hi": 120}, "epsilon": 0.5}]
    )
    datasets: list[DatasetIn] = Field(min_length=1, max_length=16)


class PaymentsIn(BaseModel):
    """The hashes of the escrow transactions the wallet sent."""

    model_config = ConfigDict(extra="forbid")

    tx_hashes: list[str] = Field(min_length=1, max_length=16)


class VerifyIn(BaseModel):
    """A released result file (as JSON) and its signed receipt file (as JSON)."""

    model_config = ConfigDict(extra="forbid")

    result: Any = Field(description="The result file's JSON content.")
    receipt: dict[str, Any] = Field(description="The signed receipt file's JSON content.")
    from_block: int = Field(default=0, ge=0)


class HealthOut(BaseModel):
    """Health: chain, database, index lag."""

    status: str = Field(examples=["ok"])
    chain: dict[str, Any]
    database: dict[str, Any]
    index: dict[str, Any]
