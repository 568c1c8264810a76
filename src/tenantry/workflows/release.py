"""The example domain, shipped: "release a track" as a saga.

``release_track`` (registered in the process's registry when this module is imported; the
service and ``tenantry worker`` import it) runs four steps for a label:

1. ``validate_metadata``: the release's title and artists, cleaned (pure: no effect);
2. ``register_isrc`` (transactional): the next ISRC of the label's registrant code for the
   year (``CC-XXX-YY-NNNNN``, counted in the tenant's setting ``release.isrc.<CC><XXX><YY>``),
   stored with the track as a metadata record; compensated by deleting the record (an ISRC
   once issued is not issued again, as the ISRC handbook requires);
3. ``schedule_distribution`` (transactional): a metadata record of the stores and the date;
   compensated by deleting it;
4. ``notify_label`` (transactional): a message queued to the label's Slack receiver in the
   alert outbox (the dispatcher delivers it, with its retries); a tenant without that receiver
   fails the step, and the saga is compensated.

Each step's effect is written in the step's own transaction with its checkpoint, so it happens
once whatever crashes. ``fail_at`` (a step's name) and ``fail_times`` inject a failure for the
first attempts of that step: for demonstrations and tests of retries and compensation.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from tenantry.errors import SettingNotFound
from tenantry.tenants import TenantSettings
from tenantry.workflows.definitions import (
    RetryPolicy,
    Step,
    StepContext,
    StepFailed,
    WorkflowDefinition,
    default_registry,
)

__all__ = ["RELEASE_TRACK", "ReleaseInput"]

StepName = Literal["validate_metadata", "register_isrc", "schedule_distribution", "notify_label"]
_RETRY: Final = RetryPolicy(max_attempts=3, initial=0.2, max_delay=30.0)


class ReleaseInput(BaseModel):
    """A track to release."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    artists: list[str] = Field(min_length=1, max_length=20)
    release_date: date
    country: str = Field(pattern=r"^[A-Z]{2}$", description="the ISRC's country code")
    registrant: str = Field(pattern=r"^[A-Z0-9]{3}$", description="the label's registrant code")
    stores: list[str] = Field(min_length=1, max_length=50)
    receiver: str = Field(default="default", pattern=r"^[a-z0-9_-]{1,64}$")
    fail_at: StepName | None = None
    fail_times: int = Field(default=1, ge=0, le=100)


def _inject(ctx: StepContext) -> None:
    if ctx.input.get("fail_at") == ctx.step and ctx.attempt <= int(ctx.input["fail_times"]):
        raise StepFailed(f"injected failure of {ctx.step} (attempt {ctx.attempt})")


async def _validate(ctx: StepContext) -> dict[str, Any]:
    _inject(ctx)
    title = " ".join(str(ctx.input["title"]).split())
    artists = list(dict.fromkeys(" ".join(a.split()) for a in ctx.input["artists"] if a.strip()))
    if not title or not artists:
        raise StepFailed("a release needs a title and at least one artist")
    return {"title": title, "artists": artists}


async def _register_isrc(ctx: StepContext) -> dict[str, Any]:
    _inject(ctx)
    assert ctx.connection is not None  # noqa: S101 - a transactional step
    year = str(ctx.input["release_date"])[2:4]
    prefix = f"{ctx.input['country']}{ctx.input['registrant']}{year}"
    await ctx.connection.execute(  # one allocation of this prefix at a time
        text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
        {"k": f"tenantry.release.isrc:{ctx.tenant_id}:{prefix}"},
    )
    settings = TenantSettings(ctx.tenant_id, ctx.service("database"))
    key = f"release.isrc.{prefix}"
    try:
        issued = int((await settings.get(key)).value)
    except SettingNotFound:
        issued = 0
    if issued >= 99_999:
        raise StepFailed(f"every ISRC of {prefix} is issued: use another registrant code")
    await settings.set(key, issued + 1, actor=f"workflow:{ctx.workflow_id}")
    isrc = f"{prefix}{issued + 1:05d}"
    meta = ctx.outputs["validate_metadata"]
    record = await ctx.service("metadata").create_metadata(
        ctx.tenant_id,
        "business",
        {"kind": "track", "isrc": isrc, "title": meta["title"], "artists": meta["artists"]},
        actor=f"workflow:{ctx.workflow_id}",
    )
    return {"isrc": isrc, "record": record}


async def _delete_record(ctx: StepContext) -> dict[str, Any]:
    await ctx.service("metadata").delete_metadata(
        ctx.tenant_id, ctx.output["record"], actor=f"workflow:{ctx.workflow_id}"
    )
    return {"deleted": ctx.output["record"]}


async def _schedule(ctx: StepContext) -> dict[str, Any]:
    _inject(ctx)
    isrc = ctx.outputs["register_isrc"]["isrc"]
    record = await ctx.service("metadata").create_metadata(
        ctx.tenant_id,
        "business",
        {
            "kind": "distribution",
            "isrc": isrc,
            "stores": list(ctx.input["stores"]),
            "date": str(ctx.input["release_date"]),
        },
        actor=f"workflow:{ctx.workflow_id}",
    )
    return {"record": record, "stores": list(ctx.input["stores"])}


async def _notify(ctx: StepContext) -> dict[str, Any]:
    _inject(ctx)
    meta, isrc = ctx.outputs["validate_metadata"], ctx.outputs["register_isrc"]["isrc"]
    message = (
        f":cd: *{meta['title']}* by {', '.join(meta['artists'])} is scheduled for "
        f"{ctx.input['release_date']} on {', '.join(ctx.input['stores'])} (ISRC {isrc})."
    )
    queued = await ctx.service("notifier").queue_message(
        ctx.tenant_id, ctx.input["receiver"], message, rule="release_track"
    )
    if queued is None:
        raise StepFailed(f"the label has no Slack receiver {ctx.input['receiver']!r}")
    return {"queued": queued}


RELEASE_TRACK: Final = default_registry().register(
    WorkflowDefinition(
        "release_track",
        (
            Step("validate_metadata", _validate, retry=_RETRY, timeout=10),
            Step("register_isrc", _register_isrc, _delete_record, _RETRY, 30, True),
            Step("schedule_distribution", _schedule, _delete_record, _RETRY, 30, True),
            Step("notify_label", _notify, None, _RETRY, 30, True),
        ),
        input_model=ReleaseInput,
        description="validate metadata, register an ISRC, schedule distribution, notify the "
        "label's Slack",
    )
)
