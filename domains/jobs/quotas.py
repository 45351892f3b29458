"""Quotas on job creation (docs/SECURITY.md "Quotas").

- Unfinished jobs: a user may have ``JOB_ACTIVE_MAX_PER_USER`` PENDING or PROCESSING jobs at
  once, a tenant ``JOB_ACTIVE_MAX_PER_TENANT``. Counted in the database (the record of what
  runs), one query on the (tenant, status) index. Two requests racing past the last free slot
  may both pass: the quota bounds load, it is not an exact count.
- ``messaging.send`` to external addresses (audit F23): a teacher reaches at most
  ``MESSAGING_TEACHER_MAX_RECIPIENTS`` per job (a refusal is ``400 invalid``: the request
  itself is too big for the role); per UTC day every sender role has a recipient budget
  (``MESSAGING_DAILY_RECIPIENTS``) and the tenant one more (``MESSAGING_TENANT_DAILY_RECIPIENTS``),
  counted in Redis with one script that checks both and takes both or neither.

Past a quota the answer is ``429 quota_exceeded`` with ``Retry-After``. When Redis cannot be
reached the daily budget is not checked (logged); the per-job cap always is.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from domains.common.errors import QuotaExceeded, ValidationFailed
from domains.jobs import repository
from realtime import store
from realtime.clients import sync_redis
from realtime.identity import Caller, Role

logger = logging.getLogger(__name__)

MESSAGING_SEND = "messaging.send"
# Counters outlive their day by one, so a clock step near midnight finds them.
_DAY_TTL = 2 * 86400

# KEYS: the user's and the tenant's counter of the day. ARGV: recipients, user limit, tenant
# limit, TTL. Returns {0, user total} when taken, {1, user total} or {2, tenant total} when a
# budget would be exceeded (nothing is taken then).
_TAKE_SCRIPT = """
local n = tonumber(ARGV[1])
local mine = tonumber(redis.call('GET', KEYS[1]) or '0')
local tenant = tonumber(redis.call('GET', KEYS[2]) or '0')
if mine + n > tonumber(ARGV[2]) then return {1, mine} end
if tenant + n > tonumber(ARGV[3]) then return {2, tenant} end
redis.call('INCRBY', KEYS[1], n)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('INCRBY', KEYS[2], n)
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {0, mine + n}
"""


def job_quota_check(tenant_id: int, *, caller: Caller) -> None:
    """Refuse a new job while the caller or its tenant has too many unfinished ones."""
    active = repository.jobs_active_count(tenant_id, created_by_id=caller.user_id)
    retry_after = settings.JOB_QUOTA_RETRY_AFTER
    if active.mine >= settings.JOB_ACTIVE_MAX_PER_USER:
        logger.info("job refused: user quota tenant=%s user=%s", tenant_id, caller.user_id)
        raise QuotaExceeded(
            ngettext(
                "You already have %(count)d unfinished job. Wait until one finishes.",
                "You already have %(count)d unfinished jobs. Wait until one finishes.",
                active.mine,
            )
            % {"count": active.mine},
            retry_after=retry_after,
        )
    if active.tenant >= settings.JOB_ACTIVE_MAX_PER_TENANT:
        logger.info("job refused: tenant quota tenant=%s", tenant_id)
        raise QuotaExceeded(
            _("Your academy has too many unfinished jobs. Try again shortly."),
            retry_after=retry_after,
        )


def job_payload_admit(tenant_id: int, *, caller: Caller, job_type: str, data: Any) -> None:
    """Per-type limits on a validated payload; for messaging, takes from the day's budget."""
    if job_type != MESSAGING_SEND or not isinstance(data, dict):
        return
    recipients = len(data.get("recipients") or ())
    if caller.role == Role.TEACHER and recipients > settings.MESSAGING_TEACHER_MAX_RECIPIENTS:
        limit = settings.MESSAGING_TEACHER_MAX_RECIPIENTS
        raise ValidationFailed(
            fields={
                "payload": {
                    "recipients": [
                        _("A teacher may send to at most %(limit)d recipients per job.")
                        % {"limit": limit}
                    ]
                }
            }
        )
    _messaging_budget_take(tenant_id, caller=caller, recipients=recipients)


def _messaging_budget_take(tenant_id: int, *, caller: Caller, recipients: int) -> None:
    user_limit = settings.MESSAGING_DAILY_RECIPIENTS.get(caller.role.value, 0)
    now = datetime.now(tz=UTC)
    day = now.strftime("%Y%m%d")
    space = store.keyspace()
    keys = [
        space.messaging_daily_key(tenant_id, day, user_id=caller.user_id),
        space.messaging_daily_key(tenant_id, day),
    ]
    try:
        client = sync_redis()
        outcome, _total = client.eval(
            _TAKE_SCRIPT,
            2,
            *keys,
            recipients,
            user_limit,
            settings.MESSAGING_TENANT_DAILY_RECIPIENTS,
            _DAY_TTL,
        )
    except redis.RedisError as exc:
        if not store.is_unavailable(exc):
            raise
        logger.warning("messaging budget not checked tenant=%s: Redis unavailable", tenant_id)
        return
    if outcome == 0:
        return
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    retry_after = max(1, int((midnight - now).total_seconds()))
    logger.info(
        "messaging refused: daily %s budget tenant=%s user=%s",
        "user" if outcome == 1 else "tenant",
        tenant_id,
        caller.user_id,
    )
    if outcome == 1:
        raise QuotaExceeded(
            _("You have reached today's limit of %(limit)d message recipients.")
            % {"limit": user_limit},
            retry_after=retry_after,
        )
    raise QuotaExceeded(
        _("Your academy has reached today's limit of message recipients."),
        retry_after=retry_after,
    )
