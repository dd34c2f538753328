-- Messages from one instance to another (docs/scaling.md): a retried
-- multi-round-trip request (2026-07-28, SEP-2322) for the instance holding
-- its pending call, and that instance's answer for the one waiting. The
-- recipient takes (deletes) its messages; leftovers older than ten minutes
-- are deleted by the next take. Times are Unix seconds.
CREATE TABLE cluster_mail (
    id         TEXT    NOT NULL PRIMARY KEY,
    -- `instance:<instance id>` or `answer:<id of the message answered>`.
    recipient  TEXT    NOT NULL,
    -- Who the message acts for (the authenticated caller, as JSON; no
    -- token, only its hash).
    caller     TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX cluster_mail_recipient ON cluster_mail (recipient);
CREATE INDEX cluster_mail_created_at ON cluster_mail (created_at);
