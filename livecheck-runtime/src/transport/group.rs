//! The consumer group seen from outside: which member owns which partition of the tests topic,
//! how far behind each partition is, and which partitions nobody consumes.
//!
//! Brokers can leave partitions orphaned: after repeated SIGKILLs of members, tansu 0.6.0 was
//! seen to end with partitions owned by no member and to hand rejoining members empty
//! assignments, so the tests on them waited in Kafka, unreported (seen on tansu 0.6.0).
//! A worker cannot fix the broker's coordinator, but it must not stay silent: every worker
//! looks at the group every few seconds, and a partition with tests waiting and no owner for two
//! looks in a row is reported — a log line, a metric, `/readyz`, the status page.

#[cfg(feature = "kafka")]
use std::collections::BTreeMap;

use serde::Serialize;

/// One partition of the tests topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PartitionView {
    /// The partition.
    pub partition: i32,
    /// The member that owns it (its client id and host), if any.
    pub owner: Option<String>,
    /// Tests written and not yet committed by the group (high watermark − committed offset),
    /// if known.
    pub lag: Option<i64>,
}

/// The group of workers, as the broker describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GroupView {
    /// The consumer group.
    pub group: String,
    /// The tests topic, whose partitions these are.
    pub topic: String,
    /// The group's state as the broker names it (`Stable`, `PreparingRebalance`, ...).
    pub state: String,
    /// Members of the group.
    pub members: usize,
    /// Every partition of the tests topic.
    pub partitions: Vec<PartitionView>,
    /// Partitions with tests waiting and no owner, seen so twice in a row while the group was
    /// stable: nobody will run their tests until the group changes.
    pub orphaned: Vec<i32>,
}

/// Reads a consumer-protocol assignment (what a member was given at its last sync):
/// the partitions of `topic` in it. `None` if the bytes are not such an assignment.
#[cfg(feature = "kafka")]
pub(crate) fn assigned_partitions(bytes: &[u8], topic: &str) -> Option<Vec<i32>> {
    let mut reader = Reader(bytes);
    let _version = reader.i16()?;
    let topics = reader.i32()?;
    let mut out = Vec::new();
    for _ in 0..topics.max(0) {
        let len = usize::try_from(reader.i16()?).ok()?;
        let ours = reader.take(len)? == topic.as_bytes();
        let count = reader.i32()?;
        for _ in 0..count.max(0) {
            let partition = reader.i32()?;
            if ours {
                out.push(partition);
            }
        }
    }
    out.sort_unstable();
    Some(out)
}

/// Reads a consumer-protocol subscription (what a member sent when it joined): the topics it
/// subscribes to. `None` if the bytes are not such a subscription.
#[cfg(feature = "kafka")]
pub(crate) fn subscribed_topics(bytes: &[u8]) -> Option<Vec<String>> {
    let mut reader = Reader(bytes);
    let _version = reader.i16()?;
    let count = reader.i32()?;
    let mut out = Vec::new();
    for _ in 0..count.max(0) {
        let len = usize::try_from(reader.i16()?).ok()?;
        out.push(String::from_utf8_lossy(reader.take(len)?).into_owned());
    }
    Some(out)
}

#[cfg(feature = "kafka")]
struct Reader<'a>(&'a [u8]);

#[cfg(feature = "kafka")]
impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(feature = "kafka")]
/// One partition in one look: its owner (if the broker says), lag, and its progress: the
/// group's committed offset and the high watermark of the report topic's partition of the same
/// number (reports are keyed by test id like the tests, so a consumed partition's reports land
/// there even while one slow test pins its commit point).
#[cfg(feature = "kafka")]
pub(crate) type Look = BTreeMap<i32, (Option<String>, Option<i64>, Progress)>;

/// A partition's progress: the group's committed offset, the report partition's high watermark.
#[cfg(feature = "kafka")]
pub(crate) type Progress = (Option<i64>, Option<i64>);

/// Judges successive looks at the group from the data, not from the coordinator's word: a
/// partition is orphaned once it had tests waiting (its high watermark past its committed
/// offset) and made no progress (neither its committed offset nor its report partition moved)
/// for successive looks, whatever state the group is said to be in — a broker was seen to
/// describe a group as `Unknown` with no member while two partitions waited for minutes
/// on tansu. A partition whose commits or reports move is being consumed, whatever the broker
/// says of its owners; this worker's own partitions are its own concern (their leases).
///
/// How many looks: two where the broker describes the members' assignments and names no owner;
/// [`UNDESCRIBED_LOOKS`] (a stall seen for 30 s at the default 10 s; a dead member's partitions
/// wait some 20 s for the session timeout, the rebalance and the handover) where it does not
/// describe them (tansu
/// 0.6.0) or the group is rebalancing (partitions are unowned for a moment, legitimately);
/// [`OWNED_LOOKS`] where the coordinator names an owner (a slow test may hold a partition's
/// progress for a while, but not for minutes with nothing reported).
#[cfg(feature = "kafka")]
#[derive(Debug, Default)]
pub(crate) struct OrphanJudge {
    /// Suspects: committed offset, and looks in a row they were seen so.
    suspects: BTreeMap<i32, (Progress, u32)>,
}

/// Looks a commit stall must last to count as orphaned where assignments are not described.
#[cfg(feature = "kafka")]
pub(crate) const UNDESCRIBED_LOOKS: u32 = 4;

/// Looks a commit stall must last on a partition the coordinator says a member owns.
#[cfg(feature = "kafka")]
pub(crate) const OWNED_LOOKS: u32 = 12;

/// The owner named for this worker's own partitions in a [`Look`].
#[cfg(feature = "kafka")]
pub(crate) const THIS_WORKER: &str = "this worker";

#[cfg(feature = "kafka")]
impl OrphanJudge {
    /// Takes a new look (`stable`: the group is said to be stable; `described`: the broker
    /// gave the members' assignments) and returns the orphaned partitions.
    pub(crate) fn judge(&mut self, stable: bool, described: bool, partitions: &Look) -> Vec<i32> {
        let unowned = if described && stable {
            2
        } else {
            UNDESCRIBED_LOOKS
        };
        let mut needed = BTreeMap::new();
        let now: BTreeMap<i32, (Progress, u32)> = partitions
            .iter()
            .filter(|(_, (owner, lag, _))| {
                owner.as_deref() != Some(THIS_WORKER) && lag.is_some_and(|l| l > 0)
            })
            .map(|(p, (owner, _, committed))| {
                needed.insert(
                    *p,
                    if owner.is_some() {
                        OWNED_LOOKS
                    } else {
                        unowned
                    },
                );
                let looks = match self.suspects.get(p) {
                    Some((before, looks)) if before == committed => looks.saturating_add(1),
                    _ => 1,
                };
                (*p, (*committed, looks))
            })
            .collect();
        let orphaned = now
            .iter()
            .filter(|(p, (_, looks))| needed.get(p).is_some_and(|n| looks >= n))
            .map(|(p, _)| *p)
            .collect();
        self.suspects = now;
        orphaned
    }
}

#[cfg(all(test, feature = "kafka"))]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut out = 0i16.to_be_bytes().to_vec();
        out.extend((topics.len() as i32).to_be_bytes());
        for (name, partitions) in topics {
            out.extend((name.len() as i16).to_be_bytes());
            out.extend(name.as_bytes());
            out.extend((partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                out.extend(p.to_be_bytes());
            }
        }
        out.extend((-1i32).to_be_bytes()); // no user data
        out
    }

    #[test]
    fn reads_a_members_assignment() {
        let bytes = assignment(&[("livecheck", &[3, 1]), ("other", &[0])]);
        assert_eq!(assigned_partitions(&bytes, "livecheck"), Some(vec![1, 3]));
        assert_eq!(assigned_partitions(&bytes, "other"), Some(vec![0]));
        assert_eq!(assigned_partitions(&bytes, "none"), Some(vec![]));
        assert_eq!(
            assigned_partitions(&bytes[..7], "livecheck"),
            None,
            "cut short"
        );
        assert_eq!(assigned_partitions(&[], "livecheck"), None);
    }

    #[test]
    fn reads_a_members_subscription() {
        let mut bytes = 1i16.to_be_bytes().to_vec();
        bytes.extend(2i32.to_be_bytes());
        for topic in ["livecheck", "other"] {
            bytes.extend((topic.len() as i16).to_be_bytes());
            bytes.extend(topic.as_bytes());
        }
        bytes.extend((-1i32).to_be_bytes()); // no user data
        assert_eq!(
            subscribed_topics(&bytes),
            Some(vec!["livecheck".to_owned(), "other".to_owned()])
        );
        assert_eq!(subscribed_topics(&bytes[..9]), None, "cut short");
    }

    #[test]
    fn orphaned_after_two_stable_looks_with_tests_waiting() {
        let look = |entries: &[(i32, Option<&str>, Option<i64>)]| {
            entries
                .iter()
                .map(|(p, o, l)| (*p, (o.map(str::to_owned), *l, (Some(7), Some(3)))))
                .collect::<Look>()
        };
        let mut judge = OrphanJudge::default();
        let orphan = look(&[
            (0, Some("w1"), Some(5)),
            (1, None, Some(3)),
            (2, None, Some(0)),
        ]);
        assert_eq!(
            judge.judge(true, true, &orphan),
            Vec::<i32>::new(),
            "one look is not enough"
        );
        assert_eq!(
            judge.judge(true, true, &orphan),
            [1],
            "no owner, tests waiting; 2 has none waiting"
        );
        // Whatever the group is said to be: a group described as rebalancing (or `Unknown`)
        // for looks on end while nothing moves is no excuse: tansu said so for minutes while
        // partitions waited.
        let mut judge = OrphanJudge::default();
        for look in 1..UNDESCRIBED_LOOKS {
            assert_eq!(
                judge.judge(false, false, &orphan),
                Vec::<i32>::new(),
                "look {look}"
            );
        }
        assert_eq!(
            judge.judge(false, false, &orphan),
            [1],
            "stuck, whatever the state"
        );
        let owned = look(&[(1, Some("w2"), Some(3))]);
        let mut judge = OrphanJudge::default();
        assert_eq!(
            judge.judge(true, true, &owned),
            Vec::<i32>::new(),
            "owned: the owner gets its allowance"
        );
        for _ in 2..OWNED_LOOKS {
            assert_eq!(judge.judge(true, true, &owned), Vec::<i32>::new());
        }
        assert_eq!(
            judge.judge(true, true, &owned),
            [1],
            "an owner that makes no progress for minutes: stuck, named"
        );
        let mine = look(&[(1, Some(THIS_WORKER), Some(3))]);
        for _ in 0..OWNED_LOOKS + 1 {
            assert_eq!(judge.judge(true, true, &mine), Vec::<i32>::new(), "its own");
        }
        judge.judge(true, true, &orphan);
        // Commits that move: consumed, whatever the broker says of owners.
        let mut moving = orphan.clone();
        judge.judge(true, true, &orphan);
        moving.get_mut(&1).unwrap().2 .0 = Some(8);
        assert_eq!(
            judge.judge(true, true, &moving),
            Vec::<i32>::new(),
            "its commits moved"
        );
        judge.judge(true, true, &orphan);
        moving = orphan.clone();
        moving.get_mut(&1).unwrap().2 .1 = Some(4);
        assert_eq!(
            judge.judge(true, true, &moving),
            Vec::<i32>::new(),
            "its commits moved"
        );
    }
}
