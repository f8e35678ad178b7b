"""When a rule's actions fire: throttles, thresholds, sequences, absence, and alert dedupe.

All state lives in the state table (keys `pk`, `sk`; TTL attribute `expires_at`)
and every decision is one conditional write or atomic counter, so concurrent
invocations agree without locks:

    throttle#<rule>#<key>   <window>      sent (ADD, conditional on sent < max)
    throttle#<rule>#<key>   suppressed    suppressed (ADD; taken and cleared by the next alert)
    threshold#<rule>#<key>  <window>      ids (ADD event-identity digests to a set unless fired;
                                          `n`, a counter, for very large counts),
                                          fired (SET once, conditional)
    seq#<rule>#<key>        first         time, id, message (deleted, conditionally, by the match)
    alerted#<rule>#<action> <identity>    (an alert for this event went out: retries skip it;
                                          LogEvent.identity: origin and id, not the id alone)
    seen#<rule>             <tag>         last_seen (epoch ms, only ever raised), alerted (set
                                          once per silence), unseen (a listed tag watched
                                          since last_seen that has never logged)

Windows are tumbling, aligned on the epoch: by event time for thresholds, by the
clock for throttles (an alert budget is spent when alerts are sent).

`state` holds the table operations, `gates` the firing conditions and throttles,
`absence` the heartbeats of absence rules. The rules schema hands them typed specs
(`chalicelib.rules.firing`, durations in seconds); nothing here reads rule text.
"""
