//! Last use of each credential, kept in memory and flushed to the registry
//! in batches: nothing is written to a store on the introspection path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::SystemTime;

/// One credential's last use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The credential.
    pub credential_id: String,
    /// When (precise: two uses within one second must still order).
    pub time: SystemTime,
    /// From where.
    pub ip: IpAddr,
}

/// The latest use per credential since the last flush.
#[derive(Debug, Default)]
pub struct UsageTracker {
    latest: Mutex<HashMap<String, (SystemTime, IpAddr)>>,
}

impl UsageTracker {
    /// Records a use; a later one replaces an earlier one.
    pub fn record(&self, credential_id: &str, time: SystemTime, ip: IpAddr) {
        let mut latest = self
            .latest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match latest.get_mut(credential_id) {
            Some(entry) if entry.0 <= time => *entry = (time, ip),
            Some(_) => {}
            None => {
                latest.insert(credential_id.to_owned(), (time, ip));
            }
        }
    }

    /// Takes everything recorded since the last call.
    pub fn drain(&self) -> Vec<Usage> {
        let taken = std::mem::take(
            &mut *self
                .latest
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        taken
            .into_iter()
            .map(|(credential_id, (time, ip))| Usage {
                credential_id,
                time,
                ip,
            })
            .collect()
    }

    /// Puts back uses whose flush failed, unless newer ones arrived meanwhile.
    pub fn restore(&self, usages: Vec<Usage>) {
        for usage in usages {
            self.record(&usage.credential_id, usage.time, usage.ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_use_per_credential_until_drained() {
        let tracker = UsageTracker::default();
        let at = |seconds| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        tracker.record("c1", at(10), a);
        tracker.record("c1", at(12), b);
        tracker.record("c1", at(11), a);
        tracker.record("c2", at(5), a);
        let mut drained = tracker.drain();
        drained.sort_by(|x, y| x.credential_id.cmp(&y.credential_id));
        assert_eq!(
            drained,
            [
                Usage {
                    credential_id: "c1".into(),
                    time: at(12),
                    ip: b
                },
                Usage {
                    credential_id: "c2".into(),
                    time: at(5),
                    ip: a
                },
            ]
        );
        assert!(tracker.drain().is_empty());
        tracker.restore(drained);
        assert_eq!(tracker.drain().len(), 2);
    }
}
