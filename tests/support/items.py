"""The item bank tests' helpers: item strategies and a signed release."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import strategies as st

from itembank import package
from itembank.demo import write_demo_bank
from itembank.model import Item, ItemType, Option, ShortFormat, ShortKey, Statement, Status

# Any text a teacher could type, including Vietnamese, symbols, quotes,
# YAML-looking words and line breaks; not control characters.
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\n :#-'\"|>"),
    max_size=30,
) | st.sampled_from(["yes", "no", "null", "~", "0012", "1.50", "-1,5", "true", "- a", "a: b"])

decimals = st.decimals(min_value=Decimal("-1000"), max_value=Decimal("1000"), allow_nan=False, places=4) | st.decimals(
    allow_nan=False, allow_infinity=False
)
option_ids = st.from_regex(r"[A-Za-z0-9]{1,3}", fullmatch=True)


@st.composite
def items(draw: st.DrawFn, kind: ItemType | None = None) -> Item:
    kind = kind or draw(st.sampled_from(list(ItemType)))
    fields: dict = {}
    if kind in (ItemType.SINGLE, ItemType.MULTIPLE):
        ids = draw(st.lists(option_ids, max_size=6, unique=True))
        fields["options"] = tuple(Option(i, draw(texts), draw(st.booleans())) for i in ids)
    elif kind == ItemType.TRUEFALSE4:
        ids = draw(st.lists(st.sampled_from("abcdef"), max_size=5, unique=True))
        fields["statements"] = tuple(Statement(i, draw(texts), draw(st.booleans())) for i in ids)
    elif kind == ItemType.SHORT:
        fields["answer"] = ShortKey(draw(texts), draw(st.sampled_from(list(ShortFormat))), draw(st.none() | decimals))
    return Item(
        id=draw(texts),
        version=draw(st.integers(-5, 10**9)),
        type=kind,
        subject=draw(texts),
        topic=draw(texts),
        level=draw(st.integers(-3, 9)),
        points=draw(decimals),
        lang=draw(texts),
        status=draw(st.sampled_from(list(Status))),
        stem=draw(texts),
        grade=draw(st.none() | st.integers(0, 13)),
        tags=tuple(draw(st.lists(texts, max_size=3))),
        shuffle=draw(st.booleans()),
        explanation=draw(st.none() | texts),
        media=tuple(draw(st.lists(texts, max_size=2))),
        **fields,
    )


@dataclass(frozen=True)
class SignedRelease:
    folder: Path  # signed, never modified: copy it before changing anything
    packed: bytes  # the .cbtbank of `folder`
    private_key: Ed25519PrivateKey
    public_key: Ed25519PublicKey

    def copy(self, to: Path) -> Path:
        shutil.copytree(self.folder, to)
        return to


def make_signed_release(root: Path) -> SignedRelease:
    """The demo bank in `root`/demo, signed by a fresh key, and packed."""
    folder = root / "demo"
    write_demo_bank(folder)
    key = Ed25519PrivateKey.generate()
    package.sign(folder, key, now=datetime(2025, 6, 1, 8, 0, tzinfo=UTC))
    package.pack(folder, root / "demo.cbtbank")
    return SignedRelease(folder, (root / "demo.cbtbank").read_bytes(), key, key.public_key())
