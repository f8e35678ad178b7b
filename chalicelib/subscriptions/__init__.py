"""Subscribing log groups to Sluice, for the CLI and for the `log_group_created` function.

`sluice subscribe|unsubscribe|subscriptions` handle many groups with an operator's
credentials; `log_group_created` handles one new group with the function's role.
Both use these modules, and everything takes its boto3 clients as arguments:

    patterns.py   which groups: globs, excludes, the loop guard
    filters.py    one group: Sluice's filter put/updated/removed, the two-filter limit
    config.py     the settings `--save` keeps for log_group_created (rules table)
    created.py    log_group_created: subscribe a new group, backfill its first lines
"""

from chalicelib.subscriptions.config import (
    CONFIG_PK,
    CONFIG_SK,
    SubscriptionConfig,
    read_config,
    write_config,
)
from chalicelib.subscriptions.created import (
    backfill,
    on_created_event,
    on_log_group_created,
)
from chalicelib.subscriptions.filters import (
    DEFAULT_STREAM,
    DESTINATIONS,
    MAX_FILTERS,
    Destination,
    Outcome,
    coverage,
    describe_filters,
    ensure_logs_permission,
    iter_log_groups,
    subscribe_group,
    unsubscribe_group,
    unsupported_reason,
)
from chalicelib.subscriptions.patterns import (
    Patterns,
    SubscriptionError,
    caused_by_sluice,
    check_pattern,
    is_sluice_log_group,
    literal_prefix,
    loop_guard_reason,
)

__all__ = [
    "CONFIG_PK",
    "CONFIG_SK",
    "DEFAULT_STREAM",
    "DESTINATIONS",
    "MAX_FILTERS",
    "Destination",
    "Outcome",
    "Patterns",
    "SubscriptionConfig",
    "SubscriptionError",
    "backfill",
    "caused_by_sluice",
    "check_pattern",
    "coverage",
    "describe_filters",
    "ensure_logs_permission",
    "is_sluice_log_group",
    "iter_log_groups",
    "literal_prefix",
    "loop_guard_reason",
    "on_created_event",
    "on_log_group_created",
    "read_config",
    "subscribe_group",
    "unsubscribe_group",
    "unsupported_reason",
    "write_config",
]
