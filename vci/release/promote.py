"""Promotion: the digest live and healthy in one environment, gated, copied by digest, deployed to another.

``promote(settings, "staging", "production", digest=D)`` reads what the source runs (never a tag, never
a rebuild), refuses when that is not ``D`` (the digest that was tested and approved), stops early when
the destination already runs it, asks for an approval where the destination requires one, claims the
destination (a second promotion meets ConflictError), runs the smoke test on the source, copies the
image by digest into the destination's repository (cluster environments), deploys it directly or as a
canary, and records the attempt in the ledger whatever its outcome.
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import Any

from ..deploy import new_release_id, target_for
from ..deploy.local import LocalTarget
from ..deploy.process import environment_lock
from ..deploy.target import Status, Target
from ..digests import check_digest
from ..errors import Aborted, ConflictError, DeployError, NotFoundError, UsageError, VciError
from ..ledger import Ledger, ReleaseRecord, make_record
from ..runs import resolve_run
from ..trust import Policy
from ..verification import check_deployable, check_policy
from .abort import signals_abort
from .analysis import Analysis
from .images import copy_to_environment, tag_in_environment
from .schema_gate import check_schema_change
from .shadow import shadow_release
from .smoke import examples_for, smoke_test
from .soak import require_soaked, soak_of
from .strategies import canary_release

STRATEGIES = ("direct", "canary", "shadow")


def check_environments(settings, source: str, destination: str):
    """Both environments, refusing a promotion onto itself or across local and cluster kinds."""
    src, dst = settings.environment(source), settings.environment(destination)
    if src.name == dst.name:
        raise UsageError(f"cannot promote {src.name!r} onto itself", hint="--from staging --to production")
    if src.is_local != dst.is_local:
        kinds = {True: "local", False: "kubernetes"}
        raise UsageError(
            f"cannot promote from {src.name!r} ({kinds[src.is_local]}) to {dst.name!r} "
            f"({kinds[dst.is_local]}): a local environment runs a run, a cluster runs an image",
            hint="promote between environments of one kind, or deploy the image to the cluster",
        )
    return src, dst


def choose_strategy(strategy: str | None, dst) -> str:
    chosen = strategy or dst.strategy or "direct"
    if chosen not in STRATEGIES:
        raise UsageError(f"unknown strategy {chosen!r}", hint="use direct or canary")
    return chosen


def require_approval(dst, approved_by: str | None) -> None:
    if dst.requires_approval and not approved_by:
        raise UsageError(
            f"promotion to {dst.name!r} requires an approval",
            hint="pass --approved-by NAME (recorded in the ledger)",
        )


def live_release(target: Target) -> Status:
    """What runs in an environment, refusing one that is not ready."""
    live = target.status()
    name = target.environment.name
    if not live.deployed:  # the same error (and exit code) as predict or test against nothing
        raise NotFoundError(
            f"nothing is deployed to {name!r}: there is no digest to promote",
            hint=f"deploy and test a release there first: vci deploy RUN_ID --env {name}",
        )
    if live.state != "ready" or not live.digest:
        raise DeployError(
            f"{name!r} is {live.state}: there is no healthy digest to promote",
            hint=f"check `vci status --env {name}` and deploy a working release first",
        )
    return live


def require_digest(found: str | None, digest: str | None, name: str, what: str = "runs") -> None:
    """Refuse (changing nothing) when ``name`` no longer runs (``found``) the approved ``digest``."""
    if digest is not None and found != digest:
        raise ConflictError(
            f"{name!r} {what} {found or 'nothing'}, not the approved {digest}: nothing was promoted",
            hint=f"promote what was tested (`vci status --env {name}` shows what runs now), "
            "or test and approve the new digest",
        )


def environment_guard(target: Target):
    """A local environment's release lock (taken at once or ConflictError); nothing for a cluster."""
    if not isinstance(target, LocalTarget):
        return contextlib.nullcontext()
    return environment_lock(target.state, f"{target.environment.name}.release", timeout=0)


def promote(
    settings,
    source: str,
    destination: str,
    *,
    digest: str | None = None,
    strategy: str | None = None,
    wait: bool = True,
    dry_run: bool = False,
    approved_by: str | None = None,
    examples_file=None,
    timeout: float | None = None,
    policy=None,
    release_id: str | None = None,
    wave: dict | None = None,
    actor: str | None = None,
) -> dict:
    """Promote what ``source`` runs to ``destination``: ``{from, to, digest, release_id, strategy, outcome, ...}``.

    ``outcome`` is succeeded, unchanged, rolled-back (a canary broke a rule: the destination keeps its old
    digest) or, for a dry run, would-promote. Failures raise after their ledger record is written.
    With ``digest`` (what was tested and approved), a source running anything else is refused with
    ConflictError before anything changes, and again if it changes before its smoke test. ``release_id``
    and ``wave`` (``{group, index, of}``): a wave of a group's release (``vci.release.waves``). ``actor``:
    who promotes, the ledger's ``who`` (default: the CI actor, else VCI_USER, else the login name).
    """

    src_env, dst_env = check_environments(settings, source, destination)
    src, dst = target_for(settings, source), target_for(settings, destination)
    if digest is not None:
        digest = check_digest(digest)
    live = live_release(src)
    require_digest(live.digest, digest, source)
    current = dst.status()
    schema_changes = check_schema_change(settings, dst_env, live, current)  # refused here when not allowed
    chosen = choose_strategy(strategy, dst_env)
    if chosen == "canary" and current.state == "ready":
        dst.check_canary()  # a canary that could not be named is refused before anything is copied
    result: dict[str, Any] = {
        "from": source,
        "to": destination,
        "digest": live.digest,
        "run_id": live.run_id,
        "image": live.image,
        "strategy": chosen,
        "previous": current.digest,
        "release_id": None,
        "dry_run": dry_run,
        **({"wave": wave} if wave else {}),
        "schema_changes": schema_changes,
    }
    if current.digest == live.digest and current.state == "ready":
        result.update(outcome="unchanged", reason=f"{destination!r} already runs {live.digest}: nothing to do")
        return result if dry_run else _recorded(settings, result, release_id or new_release_id(), approved_by, actor)
    require_approval(dst_env, approved_by)
    soak = soak_of(Ledger.for_settings(settings), src_env, live)
    require_soaked(soak)  # min_soak of the source: run there, healthy, long enough
    if soak is not None:
        result["soak"] = soak.to_json()
    verified = check_release(settings, dst_env, live)  # before anything is copied or changed
    if verified is not None:
        result["verified"] = verified.to_json()
    if dry_run:
        return {
            **result,
            "outcome": "would-promote",
            "reason": f"would move {live.digest} from {source!r} to {destination!r} ({chosen}), "
            f"replacing {current.digest or 'nothing'}" + "".join(f"; {change}" for change in schema_changes),
        }
    release_id = release_id or new_release_id()
    done = recorded_attempt(
        settings,
        dst,
        f"promote {release_id}",
        partial(_record, result, release_id, approved_by, actor=actor),
        lambda: _promote_claimed(
            settings, src_env, dst, live, chosen, release_id, examples_file, wait, timeout, policy
        ),
        actor=actor,
        release_id=release_id,
    )
    result.update(done, release_id=release_id)
    if schema_changes:
        result["reason"] += "".join(f"; {change}" for change in schema_changes)
    return result


def check_release(settings, dst_env, live: Status):
    """The destination's policy applied to what the source runs: its image by digest (a cluster), else its
    run; None when the destination has no policy."""
    policy = Policy.of(dst_env, settings.base_dir)
    if policy is None:
        return None
    if live.image and not dst_env.is_local:
        return check_policy(policy, dst_env, live.image)
    if live.run_id:
        return check_policy(policy, dst_env, resolve_run(settings, live.run_id))
    return None


def recorded_attempt(
    settings, target: Target, holder: str, record, work, *, actor: str | None = None, release_id: str | None = None
) -> dict:
    """Claim ``target``'s environment for ``actor``, run ``work()`` under its guard, and write the ledger
    record of the outcome (``failed`` with the error; ``aborted`` after SIGTERM/SIGINT, or when someone
    aborted release ``release_id``'s canary, with ``aborted_by``; else ``work``'s outcome); the claim is
    released in every case."""
    ledger, env = Ledger.for_settings(settings), target.environment.name
    with signals_abort(holder):  # a second signal waits until the claim is released and the record written
        try:
            claim = ledger.claim(env, holder=holder, actor=actor)
            try:
                with environment_guard(target):
                    done = work()
            finally:
                ledger.release_claim(claim)
        except (VciError, Aborted) as exc:
            by = ledger.aborted_by(env, release_id) if release_id else None
            outcome = "aborted" if isinstance(exc, Aborted) or by else "failed"
            ledger.append(record(outcome=outcome, reason=str(exc), **({"aborted_by": by} if by else {})))
            raise
        extra = {k: done[k] for k in ("image", "gate", "canary", "shadow", "transfer", "commit") if k in done}
        ledger.append(record(outcome=done["outcome"], reason=done["reason"], **extra))
    return done


def _promote_claimed(settings, src_env, dst, live, strategy, release_id, examples_file, wait, timeout, policy) -> dict:

    examples = examples_for(settings, live, src_env.name, examples_file)
    gate = smoke_test(settings, src_env.name, examples=examples)
    require_digest(gate["digest"], live.digest, src_env.name, "changed meanwhile: it was tested with")
    if not gate["passed"]:
        raise DeployError(
            f"the smoke test of {src_env.name!r} failed on {len(gate['failures'])} of "
            f"{gate['checked']} examples: {gate['failures'][0]}; {dst.environment.name!r} is untouched",
            hint=f"`vci test --env {src_env.name}` shows every failure",
        )
    done: dict[str, Any] = {"gate": {"passed": True, "checked": gate["checked"]}}
    as_canary = strategy == "canary" and dst.status().state == "ready"
    analysis = Analysis.of(dst.environment)
    if analysis is not None and not as_canary:  # a canary reads it at every step instead
        passed, done["gate"]["analysis"] = analysis.check()
        if not passed:
            raise DeployError(
                f"the analysis gate failed: {done['gate']['analysis']}; {dst.environment.name!r} is untouched"
            )
    if dst.environment.is_local:
        what = live.run_id
    else:
        copied = copy_to_environment(live.image, dst.environment, tag=False, source_insecure=src_env.insecure)
        done.update(copied)
        what = done["image"]
        check_deployable(settings, dst.environment, what)  # the copy carried the evidence the source had
    if as_canary:
        done.update(canary_release(dst, what, release_id, policy, examples["inputs"], timeout))
    elif strategy == "shadow" and dst.status().state == "ready":
        done.update(shadow_release(dst, what, release_id, None, timeout))
    else:
        deployed = dst.deploy(what, release_id=release_id, wait=wait, timeout=timeout)
        note = "" if strategy == "direct" else f" ({strategy} skipped: nothing ran there yet)"
        done.update(
            outcome="succeeded",
            endpoint=deployed.endpoint,
            reason=f"deployed {live.digest} to {dst.environment.name!r}{note}{committed(deployed)}",
            **({"commit": deployed.commit} if deployed.commit else {}),
        )
    if done["outcome"] == "succeeded" and not dst.environment.is_local:
        tag_in_environment(what, dst.environment)  # the environment's tag moves only once it runs there
    return done


def committed(deployed) -> str:
    """``; committed abc123 to main`` (or the pull request) for a gitops environment's deploy, else ""."""
    if not deployed.commit:
        return ""
    pull = deployed.commit.get("pull_request")
    where = f"pull request {pull['url']}" if pull else f"{deployed.commit['branch']}"
    return f"; {deployed.status}: {deployed.commit['sha'][:12]} to {where}"


def _record(result: dict, release_id: str, approved_by, **fields) -> ReleaseRecord:
    return make_record(
        release_id=release_id,
        environment=result["to"],
        action="promote",
        digest=result["digest"],
        run_id=result.get("run_id"),
        image=fields.pop("image", None) or result.get("image"),
        strategy=result["strategy"],
        previous=result.get("previous"),
        approver=approved_by,
        source=result["from"],
        **{key: result[key] for key in ("verified", "soak", "wave") if result.get(key)},
        **fields,
    )


def _recorded(settings, result: dict, release_id: str, approved_by, actor: str | None) -> dict:
    Ledger.for_settings(settings).append(
        _record(result, release_id, approved_by, outcome="unchanged", reason=result["reason"], actor=actor)
    )
    return {**result, "release_id": release_id}
