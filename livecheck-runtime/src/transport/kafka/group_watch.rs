//! Looking at the consumer group: the watch for orphaned partitions (who owns what, the lag of
//! each), and the check of other workers' claims with the coordinator.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};

use super::claims::{judge_claim, ClaimRead};
use super::members::list_members;
use super::stats::{rarely, KafkaStats};
use super::tests_topic::GroupContext;
use crate::lock::lock;
use crate::signing;
use crate::text::Escaped;
use crate::transport::group::{
    assigned_partitions, GroupView, Look, OrphanJudge, PartitionView, THIS_WORKER,
};

/// Looks at the group every `every` (see [`GroupView`]): who owns which partition of the tests
/// topic, the lag of each, and which are orphaned — said loudly, once when it starts and once
/// when it ends.
pub(super) async fn watch_group(
    consumer: Arc<StreamConsumer<GroupContext>>,
    group: String,
    reports: String,
    every: Duration,
    view: watch::Sender<Option<GroupView>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut judge = OrphanJudge::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures = 0u64;
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {}
        }
        let (c, g) = (consumer.clone(), group.clone());
        let r = reports.clone();
        let look = tokio::task::spawn_blocking(move || look_at_group(&c, &g, &r)).await;
        let (state, members, described, partitions) = match look {
            Ok(Ok(look)) => look,
            Ok(Err(error))
                if error.rdkafka_error_code() == Some(RDKafkaErrorCode::UnsupportedFeature) =>
            {
                // librdkafka's mock cluster cannot list groups: nothing to watch there.
                tracing::debug!(%error, "the broker cannot describe consumer groups: orphaned partitions are not watched");
                break;
            }
            Ok(Err(error)) => {
                failures += 1;
                if rarely(failures, 30) {
                    tracing::warn!(%error, failures, "could not look at the consumer group");
                }
                continue;
            }
            Err(_) => continue,
        };
        let orphaned = judge.judge(state == "Stable" && members > 0, described, &partitions);
        let before = view
            .borrow()
            .as_ref()
            .map(|v| v.orphaned.clone())
            .unwrap_or_default();
        if orphaned != before {
            if orphaned.is_empty() {
                tracing::info!(group, "orphaned partitions: none any more");
            } else {
                let (waiting, owners) = orphans_said(&orphaned, &partitions);
                tracing::error!(group, partitions = ?orphaned, tests_waiting = waiting,
                    coordinator_says = ?owners, state = %state, members,
                    "orphaned partitions: tests wait on them and nothing of them is committed or \
                     reported, whatever the coordinator says; restarting a worker makes the \
                     group rebalance");
            }
        }
        view.send_replace(Some(GroupView {
            group: group.clone(),
            topic: consumer.context().tests_topic.clone(),
            state,
            members,
            partitions: partitions
                .into_iter()
                .map(|(partition, (owner, lag, _))| PartitionView {
                    partition,
                    owner,
                    lag,
                })
                .collect(),
            orphaned,
        }));
    }
}

/// What the alarm about `orphaned` partitions says: the tests waiting on them, and the owner
/// the coordinator claims for each, where it names one — its word, against the data (tests
/// waiting, no progress).
fn orphans_said(orphaned: &[i32], partitions: &Look) -> (i64, Vec<String>) {
    let waiting = orphaned
        .iter()
        .filter_map(|p| partitions.get(p).and_then(|(_, lag, _)| *lag))
        .sum();
    let owners = orphaned
        .iter()
        .map(|p| {
            let owner = partitions.get(p).and_then(|(owner, _, _)| owner.as_deref());
            format!("{p}: {}", owner.unwrap_or("no member"))
        })
        .collect();
    (waiting, owners)
}

/// The group's state, its member count, and each tests partition's owner and lag.
#[allow(clippy::type_complexity)]
fn look_at_group(
    consumer: &StreamConsumer<GroupContext>,
    group: &str,
    reports: &str,
) -> rdkafka::error::KafkaResult<(String, usize, bool, Look)> {
    let timeout = Duration::from_secs(5);
    let topic = consumer.context().tests_topic.as_str();
    // What this worker owns, it knows: brokers need not describe it (tansu 0.6.0 may not).
    let mine = consumer.context().assigned.borrow().clone();
    let groups = consumer.fetch_group_list(Some(group), timeout)?;
    let (state, members) = match groups.groups().iter().find(|g| g.name() == group) {
        Some(info) => (info.state().to_owned(), info.members()),
        None => (String::from("Unknown"), &[][..]),
    };
    let mut owners = HashMap::new();
    let mut described = false;
    for member in members {
        let partitions = member
            .assignment()
            .filter(|bytes| !bytes.is_empty())
            .and_then(|bytes| assigned_partitions(bytes, topic))
            .unwrap_or_default();
        described |= !partitions.is_empty();
        for partition in partitions {
            owners.insert(
                partition,
                format!("{} ({})", member.id(), member.client_host()),
            );
        }
    }
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let count = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len());
    let mut tpl = TopicPartitionList::new();
    for partition in 0..count {
        tpl.add_partition(topic, partition as i32);
    }
    let committed = consumer.committed_offsets(tpl, timeout)?;
    // Reports land on the report partition numbered like their test's when both topics have
    // the same partition count (same key, same partitioner).
    let reports_partitions = consumer
        .fetch_metadata(Some(reports), timeout)
        .ok()
        .and_then(|m| {
            m.topics()
                .iter()
                .find(|t| t.name() == reports)
                .map(|t| t.partitions().len())
        })
        == Some(count);
    let mut out = BTreeMap::new();
    for partition in 0..count as i32 {
        let offset = match committed
            .find_partition(topic, partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        };
        let lag = consumer
            .fetch_watermarks(topic, partition, timeout)
            .ok()
            .map(|(low, high)| (high - offset.filter(|o| *o >= low).unwrap_or(low)).max(0));
        let owner = owners
            .remove(&partition)
            .or_else(|| mine.contains(&partition).then(|| THIS_WORKER.to_owned()));
        let reports_high = reports_partitions
            .then(|| consumer.fetch_watermarks(reports, partition, timeout).ok())
            .flatten()
            .map(|(_, high)| high);
        out.insert(partition, (owner, lag, (offset, reports_high)));
    }
    Ok((state, members.len(), described, out))
}

/// Checks each claim of another worker with the group's coordinator before it fences: it is
/// believed when this worker is no longer a member of the group, or when the claiming member
/// is one and — where the broker describes assignments — owns the partition. A claim the
/// coordinator cannot vouch for (no such member, the coordinator cannot be asked) is not
/// believed: counted (`claim_not_believed`), logged at most once a minute.
pub(super) async fn judge_claims(
    consumer: Arc<StreamConsumer<GroupContext>>,
    group: String,
    mut claims: mpsc::Receiver<ClaimRead>,
    stats: Arc<KafkaStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let claim = tokio::select! {
            _ = shutdown.changed() => break,
            claim = claims.recv() => match claim {
                Some(claim) => claim,
                None => break,
            },
        };
        let topic = &consumer.context().tests_topic;
        let look = list_members(&consumer, &group, topic).await;
        let context = consumer.context();
        let ours = lock(&context.membership).clone();
        let verdict = match look {
            Ok((state, members)) => judge_claim(&claim, ours.as_ref(), &state, &members),
            Err(error) => Err(format!("the coordinator cannot be asked: {error}")),
        };
        match verdict {
            Ok(()) => context.claim_read(claim.partition, &claim.instance),
            Err(why) => stats.skips.skip(
                "bus",
                "claim_not_believed",
                format_args!(
                    "claim of partition {} by {} not believed: {why}",
                    claim.partition,
                    Escaped(signing::truncated(&claim.member))
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orphan_alarm_counts_the_tests_waiting_and_names_the_claimed_owners() {
        let mut look = Look::new();
        look.insert(
            0,
            (
                Some("livecheck-a (host)".to_owned()),
                Some(5),
                (Some(10), None),
            ),
        );
        look.insert(1, (None, Some(7), (None, None)));
        look.insert(2, (None, None, (None, None)));
        look.insert(
            3,
            (
                Some("livecheck-b (host)".to_owned()),
                Some(100),
                (None, None),
            ),
        );
        let (waiting, owners) = orphans_said(&[0, 1, 2], &look);
        assert_eq!(
            waiting, 12,
            "partition 3 is not orphaned; 2 has no known lag"
        );
        assert_eq!(
            owners,
            ["0: livecheck-a (host)", "1: no member", "2: no member"]
        );
        assert_eq!(orphans_said(&[], &look), (0, Vec::new()));
    }
}
