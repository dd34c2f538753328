//! The JSON-lines stream of the audit log (`audit_jsonl`): one JSON object
//! per line, on stdout or appended to a file. A line is the record (see
//! `crate::store::AuditRecord`) without the database's `id`, plus `time`
//! (RFC 3339, milliseconds, UTC), with `detail` as an object. Absent fields
//! are left out.

use serde_json::{Map, Value};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::JsonlTarget;
use crate::store::AuditRecord;

/// The line of a record (without the newline).
pub fn line(r: &AuditRecord) -> String {
    let mut out = Map::new();
    out.insert("time".into(), Value::String(rfc3339_millis(r.at_ms)));
    if let Ok(Value::Object(fields)) = serde_json::to_value(r) {
        for (k, v) in fields {
            if k == "id" {
                continue;
            }
            out.insert(k, v);
        }
    }
    if let Some(d) = &r.detail
        && let Ok(v) = serde_json::from_str::<Value>(d)
    {
        out.insert("detail".into(), v);
    }
    Value::Object(out).to_string()
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds.
pub fn rfc3339_millis(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// An open stream.
pub(super) struct Stream {
    out: Box<dyn AsyncWrite + Send + Unpin>,
    name: String,
}

impl Stream {
    /// Opens the target; `None` when it is off.
    pub(super) async fn open(target: &JsonlTarget) -> Result<Option<Self>, String> {
        Ok(match target {
            JsonlTarget::Off => None,
            JsonlTarget::Stdout => Some(Self {
                out: Box::new(tokio::io::stdout()),
                name: "stdout".into(),
            }),
            JsonlTarget::File(path) => {
                let file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await
                    .map_err(|e| format!("audit_jsonl: cannot open {}: {e}", path.display()))?;
                Some(Self {
                    out: Box::new(file),
                    name: path.display().to_string(),
                })
            }
        })
    }

    /// Writes the batch's lines in one write.
    pub(super) async fn write(&mut self, batch: &[AuditRecord]) {
        let mut text = String::new();
        for r in batch {
            text.push_str(&line(r));
            text.push('\n');
        }
        let written = async {
            self.out.write_all(text.as_bytes()).await?;
            self.out.flush().await
        }
        .await;
        if let Err(e) = written {
            tracing::error!(event = "audit.write_failed", records = batch.len(), target = %self.name, error = %e, "audit lines could not be written");
        }
    }

    pub(super) async fn finish(&mut self) {
        let _ = self.out.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_the_time_no_id_and_the_detail_as_an_object() {
        let r = AuditRecord {
            id: 7,
            at_ms: 1_700_000_000_123,
            kind: "tool.call".into(),
            outcome: "ok".into(),
            target: Some("echo".into()),
            instance: "i1".into(),
            detail: Some(r#"{"transport":"rest"}"#.into()),
            ..Default::default()
        };
        let l = line(&r);
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["time"], "2023-11-14T22:13:20.123Z", "{l}");
        assert!(v.get("id").is_none());
        assert!(v.get("user_id").is_none());
        assert_eq!(v["detail"]["transport"], "rest");
        assert_eq!(v["target"], "echo");
    }
}
