"""The app's actions: promote (direct or canary), roll back, abort a canary, through the CLI's own functions.

Each goes through the same gates as ``vci promote``/``vci rollback`` (smoke test, approval, the
destination's signature policy) and the same ledger records, with the person who clicked as the
actor (the library's ``actor=``: ``who`` in the record and its claim) and the approver; actions of
different people run at once, each recorded as its own actor. On top of the library's rules the app adds two of its
own: where an environment requires approval, the approver must be someone other than the actor; and
an action refers to what the page showed (the destination's release then), so a second tab, a second
click or a second person acting on a page that is no longer current is told what changed, not applied.
Two promotions that race anyway meet at the ledger's claim: the loser gets its ConflictError.
"""

from __future__ import annotations

import re

from ..config import Settings
from ..deploy import target_for
from ..errors import ConflictError, UsageError
from ..release.abort import abort_canary
from ..release.promote import promote
from ..release.rollback import rollback

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@+-]{0,63}$")


def check_actor(actor: str | None) -> str:
    """The name of who acts (recorded as the ledger's ``who``), checked."""
    actor = (actor or "").strip()
    if not NAME.fullmatch(actor):
        raise UsageError("say who you are: a name of 1-64 letters, digits, spaces or ._@+-", hint="fill in 'your name'")
    return actor


def check_people(settings: Settings, env: str, actor: str | None, approver: str | None) -> tuple[str, str | None]:
    """The actor and approver of a promotion to ``env``, checked: where ``env`` requires approval, an
    approver other than the actor."""
    actor, approver = check_actor(actor), (approver or "").strip() or None
    if approver is not None and not NAME.fullmatch(approver):
        raise UsageError("the approver's name must be 1-64 letters, digits, spaces or ._@+-")
    if settings.environment(env).requires_approval:
        if approver is None:
            raise UsageError(f"{env!r} requires an approval", hint="name who approved it")
        if approver.casefold() == actor.casefold():
            raise UsageError(f"{env!r} requires an approval by someone else: {actor} cannot approve their own action")
    return actor, approver


def require_current(settings: Settings, env: str, seen: str | None) -> None:
    """Refuse (changing nothing) when ``env`` no longer runs the release the page showed (``seen``)."""
    now = target_for(settings, env).status()
    if (now.release_id or "") != (seen or ""):
        raise ConflictError(
            f"{env!r} changed since this page was loaded: it now runs release {now.release_id or 'none'} "
            f"({now.digest or 'nothing'}); nothing was done",
            hint="reload the page, check what runs now, and act again if it is still wanted",
        )


def promote_action(
    settings: Settings,
    *,
    source: str,
    destination: str,
    digest: str,
    strategy: str,
    actor: str | None,
    approver: str | None,
    seen: str | None,
) -> dict:
    """``vci promote --from SOURCE --to DESTINATION --digest D --strategy S --approved-by A`` as ``actor``."""
    if strategy not in ("direct", "canary"):
        raise UsageError(f"unknown strategy {strategy!r}", hint="direct or canary")
    actor, approver = check_people(settings, destination, actor, approver)
    require_current(settings, destination, seen)
    return promote(settings, source, destination, digest=digest, strategy=strategy, approved_by=approver, actor=actor)


def rollback_action(settings: Settings, *, env: str, to: str, actor: str | None, seen: str | None) -> dict:
    """``vci rollback --env ENV --to RELEASE`` as ``actor``."""
    actor = check_actor(actor)
    require_current(settings, env, seen)
    return rollback(settings, env, to=to, actor=actor)


def abort_action(settings: Settings, *, env: str, actor: str | None) -> str:
    """Remove ``env``'s canary as ``actor``: the promotion driving it sees it gone and records the attempt
    as aborted by ``actor``; the stable release keeps serving. It must work while that promotion runs."""
    return abort_canary(settings, env, actor=check_actor(actor))
