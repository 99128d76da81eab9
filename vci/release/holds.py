"""Holds: a digest that automatic promotion must not bring into an environment (after a rollback from it).

Layout in the configured store, beside the ledger, write-once like it::

    holds/<env>/<id>.json           "digest D is held in env" (who, when, why; id: the rollback's release id)
    holds/<env>/<id>.lifted.json    "... and that hold was lifted" (who, when)

A hold is active while it has no ``lifted`` marker; nothing is overwritten or deleted, so any store with
a conditional put keeps holds as it keeps the ledger. ``vci rollback`` holds the digest it rolls away
from; ``vci promote --auto`` skips a held digest; a manual ``vci promote --digest D`` is not held back
(a person chose it). ``vci holds lift`` ends a hold.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..catalog import newest_keys, read_pages
from ..config import Settings
from ..deploy import new_release_id
from ..digests import check_digest
from ..errors import ConflictError, NotFoundError
from ..ledger import Ledger, now_iso, who
from ..store.base import Store


@dataclass(frozen=True)
class Hold:
    """One active hold of ``digest`` in ``environment``."""

    hold_id: str
    environment: str
    digest: str
    reason: str
    who: str
    when: str
    timestamp: float

    def to_json(self) -> dict:
        return dict(self.__dict__)


class Holds:
    """The holds of every environment in one store."""

    def __init__(self, store: Store):
        self.store = store

    @classmethod
    def for_settings(cls, settings: Settings) -> Holds:
        return cls(Ledger.for_settings(settings).store)  # the ledger's store object (one per URL)

    def add(self, env: str, digest: str, reason: str, hold_id: str | None = None) -> Hold:
        """Hold ``digest`` in ``env`` (written once; a rollback passes its release id as ``hold_id``)."""
        hold = Hold(hold_id or new_release_id(), env, check_digest(digest), reason, who(), now_iso(), time.time())
        try:
            self.store.put_json_new(f"holds/{env}/{hold.hold_id}.json", hold.to_json())
        except ConflictError:
            raise ConflictError(
                f"hold {hold.hold_id} of {env!r} exists already", hint="each hold is written once"
            ) from None
        return hold

    def active(self, env: str) -> list[Hold]:
        """The holds of ``env`` not lifted, newest first."""
        prefix = f"holds/{env}/"
        keys = newest_keys(self.store, prefix)
        lifted = {k.removesuffix(".lifted.json") for k in keys if k.endswith(".lifted.json")}
        open_keys = [k for k in keys if not k.endswith(".lifted.json") and k.removesuffix(".json") not in lifted]
        docs = [doc for page in read_pages(self.store, open_keys, page=len(open_keys) or 1) for doc in page]
        return [Hold(**{f: doc[f] for f in Hold.__dataclass_fields__}) for doc in docs]

    def of(self, env: str, digest: str | None) -> list[Hold]:
        """The active holds of ``digest`` in ``env``."""
        return [hold for hold in self.active(env) if hold.digest == digest]

    def lift(self, env: str, digest: str) -> list[Hold]:
        """Lift every active hold of ``digest`` in ``env`` (NotFoundError when there is none)."""
        digest = check_digest(digest)
        held = self.of(env, digest)
        if not held:
            raise NotFoundError(
                f"{digest} is not held in {env!r}", hint=f"`vci holds list --env {env}` shows the holds"
            )
        for hold in held:
            try:
                self.store.put_json_new(f"holds/{env}/{hold.hold_id}.lifted.json", {"who": who(), "when": now_iso()})
            except ConflictError:
                pass  # lifted meanwhile by someone else: lifted all the same
        return held


def list_holds(settings: Settings, env: str | None = None) -> dict:
    """``{environment, holds: [...]}``: the active holds of ``env``, newest first."""
    name = settings.environment(env).name
    return {"environment": name, "holds": [hold.to_json() for hold in Holds.for_settings(settings).active(name)]}


def hold(settings: Settings, env: str | None, digest: str, reason: str | None = None) -> dict:
    """Hold ``digest`` in ``env`` by hand: ``vci promote --auto`` will not bring it there."""
    name = settings.environment(env).name
    return Holds.for_settings(settings).add(name, digest, reason or "held by hand").to_json()


def unhold(settings: Settings, env: str | None, digest: str) -> dict:
    """Lift the holds of ``digest`` in ``env``: ``{environment, digest, lifted: [hold ids]}``."""
    name = settings.environment(env).name
    lifted = Holds.for_settings(settings).lift(name, digest)
    return {"environment": name, "digest": digest, "lifted": [h.hold_id for h in lifted]}
