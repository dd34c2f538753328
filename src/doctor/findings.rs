//! How a check's findings become a [`CheckResult`].

use super::{Check, CheckResult, Status};

/// One problem found by a check.
pub(super) struct Item {
    status: Status,
    message: String,
    clients: Option<String>,
    fix: Option<String>,
}

impl Item {
    pub(super) fn says(&mut self, s: impl Into<String>) -> &mut Self {
        self.clients = Some(s.into());
        self
    }

    pub(super) fn fix(&mut self, s: impl Into<String>) -> &mut Self {
        self.fix = Some(s.into());
        self
    }
}

/// Collects what one check found and turns it into a [`CheckResult`]:
/// the worst status wins; the details of passing parts are shown only
/// when nothing is wrong.
pub(super) struct Findings {
    check: Check,
    items: Vec<Item>,
    ok: Vec<String>,
}

impl Findings {
    pub(super) fn new(check: Check) -> Self {
        Self {
            check,
            items: Vec::new(),
            ok: Vec::new(),
        }
    }

    pub(super) fn ok(&mut self, s: impl Into<String>) {
        self.ok.push(s.into());
    }

    fn push(&mut self, status: Status, message: String) -> &mut Item {
        self.items.push(Item {
            status,
            message,
            clients: None,
            fix: None,
        });
        let last = self.items.len() - 1;
        &mut self.items[last]
    }

    pub(super) fn fail(&mut self, message: impl Into<String>) -> &mut Item {
        self.push(Status::Fail, message.into())
    }

    pub(super) fn warn(&mut self, message: impl Into<String>) -> &mut Item {
        self.push(Status::Warn, message.into())
    }

    pub(super) fn has_failures(&self) -> bool {
        self.items.iter().any(|i| i.status == Status::Fail)
    }

    pub(super) fn skip(self, why: impl Into<String>) -> CheckResult {
        CheckResult {
            check: self.check,
            name: self.check.name(),
            status: Status::Skip,
            detail: format!("skipped: {}", why.into()),
            clients: None,
            hint: None,
        }
    }

    pub(super) fn finish(self) -> CheckResult {
        let status = self
            .items
            .iter()
            .map(|i| i.status)
            .max()
            .unwrap_or(Status::Pass);
        // Failures first, then warnings.
        let mut items: Vec<&Item> = self.items.iter().collect();
        items.sort_by_key(|i| std::cmp::Reverse(i.status));
        let joined = |pick: fn(&Item) -> Option<&String>| {
            let mut seen: Vec<&str> = Vec::new();
            for i in &items {
                if let Some(s) = pick(i)
                    && !seen.contains(&s.as_str())
                {
                    seen.push(s);
                }
            }
            (!seen.is_empty()).then(|| seen.join("; "))
        };
        let detail = if items.is_empty() {
            self.ok.join("; ")
        } else {
            items
                .iter()
                .map(|i| i.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        };
        CheckResult {
            check: self.check,
            name: self.check.name(),
            status,
            detail,
            clients: joined(|i| i.clients.as_ref()),
            hint: joined(|i| i.fix.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_report_the_worst_status_and_every_problem() {
        let mut f = Findings::new(Check::Cors);
        f.ok("fine");
        f.warn("w").fix("fix w");
        f.fail("f").says("client f").fix("fix f");
        let r = f.finish();
        assert_eq!(r.status, Status::Fail);
        assert_eq!(r.detail, "f; w");
        assert_eq!(r.hint.as_deref(), Some("fix f; fix w"));
        assert_eq!(r.clients.as_deref(), Some("client f"));
        let mut f = Findings::new(Check::Cors);
        f.ok("a");
        f.ok("b");
        let r = f.finish();
        assert_eq!((r.status, r.detail.as_str()), (Status::Pass, "a; b"));
    }
}
