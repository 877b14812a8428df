//! The report topic read back: every partition, from the replay window on, by every worker;
//! a peer's suite report is adopted only from the group's leader.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use futures::StreamExt;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::config::Role;
use super::consume::{next, read_record, Next};
use super::headers::{header, HEADER_GROUP, HEADER_MEMBER, HEADER_PUBLISHER, REPORT_KIND};
use super::members::{leader_of, list_members};
use super::stats::{broker_error, KafkaStats};
use super::{receiver_stream, KafkaTransport};
use crate::text::Escaped;
use crate::transport::{PublishedReport, ReportEvent, TransportError};
use crate::wire::limits::Limits;
use crate::wire::model::TestReport;
use crate::wire::signing::{self, Source, HEADER_RECORD_SIGNATURE};

impl KafkaTransport {
    /// Starts reading the report topic back (every partition, from `report_replay` ago) into
    /// the report stream of a subscription.
    pub(super) fn report_feed(
        &self,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(JoinHandle<()>, BoxStream<'static, ReportEvent>), TransportError> {
        let group = format!("{}-reports", self.config.group_id);
        let mut config = self.config.client_config(Role::Consumer { group: &group });
        // The end of each partition is how the look-back is known to be read.
        config.set("enable.partition.eof", "true");
        let consumer: StreamConsumer<ReportContext> = config
            .create_with_context(ReportContext)
            .map_err(|e| broker_error("create report consumer", e))?;
        let (out, feed) = mpsc::channel(4096);
        let range = self
            .config
            .client_config(Role::Consumer { group: "" })
            .get("partition.assignment.strategy")
            .is_some_and(|strategy| strategy.trim() == "range");
        let reader = ReportReader {
            topic: self.config.topics.reports.clone(),
            replay: self.config.report_replay,
            publisher: self.publisher.clone(),
            group: self.config.group_id.clone(),
            tests_topic: self.config.topics.tests.clone(),
            range,
            limits: self.config.limits,
        };
        let task = tokio::spawn(consume_reports(
            Arc::new(consumer),
            reader,
            out,
            self.stats.clone(),
            shutdown,
        ));
        Ok((task, receiver_stream(feed).boxed()))
    }
}

/// The report consumer's context: reaching a partition's end is how the look-back is known to
/// be read, not an error to log (librdkafka reports it as one, every time).
struct ReportContext;

impl ClientContext for ReportContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode};
        match error {
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF) => {}
            error => tracing::error!("librdkafka: {error}: {reason}"),
        }
    }
}

impl ConsumerContext for ReportContext {}

/// What the report consumer needs beside its consumer and channel.
struct ReportReader {
    topic: String,
    replay: Duration,
    /// This transport's name in the reports it publishes.
    publisher: String,
    /// The workers' consumer group, and its tests topic.
    group: String,
    tests_topic: String,
    /// Whether the group assigns with the range assignor (see [`leader_of`]).
    range: bool,
    limits: Limits,
}

/// How long a look at the group vouches for the leader of suite reports.
const LEADER_LOOK_FOR: Duration = Duration::from_secs(2);

/// Reads every partition of the report topic from `replay` ago and forwards each report, then
/// [`ReportEvent::CaughtUp`] once every partition's end is reached, then what comes.
///
/// Reports are untrusted input: a record over the limits is skipped; where the deployment
/// signs, a peer's unsigned report is dropped; a suite report (no test) of a peer is forwarded
/// only if its writer is the group's leader now, as the coordinator describes the group (during
/// the look-back, whose leaders the coordinator no longer knows, one of this group's members).
async fn consume_reports(
    consumer: Arc<StreamConsumer<ReportContext>>,
    reader: ReportReader,
    out: mpsc::Sender<ReportEvent>,
    stats: Arc<KafkaStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let ReportReader {
        topic,
        replay,
        publisher,
        group,
        tests_topic,
        range,
        limits,
    } = reader;
    let mut leader: Option<(Instant, Option<String>)> = None;
    let since = chrono::Utc::now() - chrono::Duration::from_std(replay).unwrap_or_default();
    let partitions = loop {
        let assign = {
            let consumer = consumer.clone();
            let topic = topic.clone();
            tokio::task::spawn_blocking(move || assign_reports(&consumer, &topic, since))
        };
        match assign.await {
            Ok(Ok(partitions)) => break partitions,
            Ok(Err(error)) => {
                stats.consumer_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "report topic not readable yet: retrying");
            }
            Err(error) => tracing::error!(%error, "report assignment task failed"),
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
    let mut at_end = std::collections::HashSet::new();
    let mut caught_up = false;
    let since_ms = since.timestamp_millis();
    loop {
        let message = tokio::select! {
            _ = shutdown.changed() => break,
            next = next(&consumer, "report", &stats) => match next {
                Next::Message(message) => message,
                Next::End(partition) => {
                    at_end.insert(partition);
                    if !caught_up && partitions.iter().all(|p| at_end.contains(p)) {
                        caught_up = true;
                        tracing::debug!(?partitions, "the group's recent reports are read");
                        if out.send(ReportEvent::CaughtUp).await.is_err() {
                            break;
                        }
                    }
                    continue;
                }
            },
        };
        let published_at = message
            .timestamp()
            .to_millis()
            .and_then(chrono::DateTime::from_timestamp_millis);
        // Read from a partition's beginning (no offset by time): older reports are skipped.
        if published_at.is_some_and(|at| at.timestamp_millis() < since_ms) {
            continue;
        }
        let own = header(&message, HEADER_PUBLISHER) == Some(publisher.as_bytes());
        let (partition, offset) = (message.partition(), message.offset());
        let payload = message.payload().unwrap_or_default();
        let Some(report) = read_record::<TestReport>(payload, (partition, offset), limits, &stats)
        else {
            continue;
        };
        if !own {
            if let Some(key) = signing::key() {
                let record_key = message.key().unwrap_or_default();
                let signature = header(&message, HEADER_RECORD_SIGNATURE);
                if !key.verify_record(REPORT_KIND, record_key, payload, signature) {
                    let id = report.test.as_ref().map_or("", |t| t.id.as_str());
                    signing::reject(Source::Report, id);
                    continue;
                }
            }
        }
        let writer = |name| {
            header(&message, name)
                .and_then(|raw| std::str::from_utf8(raw).ok())
                .map(str::to_owned)
        };
        let (writer_group, writer_member) = (writer(HEADER_GROUP), writer(HEADER_MEMBER));
        drop(message);
        if report.is_suite() && !own {
            let from = match suite_writer(&group, writer_group.as_deref(), writer_member) {
                Ok(member) if caught_up => {
                    let fresh = leader
                        .as_ref()
                        .filter(|(at, _)| at.elapsed() < LEADER_LOOK_FOR)
                        .map(|(_, id)| id.clone());
                    let current = match fresh {
                        Some(id) => id,
                        None => {
                            let id = look_for_leader(&consumer, &group, &tests_topic, range).await;
                            // Only an answer is kept: the next report asks again.
                            leader = id.clone().map(|id| (Instant::now(), Some(id)));
                            id
                        }
                    };
                    written_by_leader(&member, current.as_deref())
                }
                Ok(_) => Ok(()), // the look-back: one of this group's members
                Err(why) => Err(why),
            };
            if let Err(why) = from {
                stats.skips.skip(
                    "reports",
                    "not_from_leader",
                    format_args!(
                        "suite report of {} at {partition}/{offset} not adopted: {why}",
                        Escaped(signing::truncated(&report.case_name))
                    ),
                );
                continue;
            }
        }
        let report = PublishedReport::new(report, own, published_at);
        if out
            .send(ReportEvent::Report(Box::new(report)))
            .await
            .is_err()
        {
            break;
        }
        tracing::trace!(partition, offset, "report read back");
    }
}

/// The member that wrote a peer's suite report, as its headers name it (`livecheck-group`,
/// `livecheck-member`); why it is not one of `group`'s.
fn suite_writer(
    group: &str,
    writer_group: Option<&str>,
    writer_member: Option<String>,
) -> Result<String, String> {
    if writer_group != Some(group) {
        return Err("written by no worker of this group".to_owned());
    }
    writer_member.ok_or_else(|| "its writer is not named".to_owned())
}

/// Whether `member`, the writer of a suite report, is the group's leader `current` (as the
/// coordinator describes it, if it does); why not.
fn written_by_leader(member: &str, current: Option<&str>) -> Result<(), String> {
    if current == Some(member) {
        Ok(())
    } else {
        Err(format!(
            "written by member {}, not the group's leader",
            Escaped(signing::truncated(member))
        ))
    }
}

/// The member the coordinator describes as the group's leader now (see [`leader_of`]); `None`
/// if it cannot be asked or does not say. tansu may leave a live group out of a listing now
/// and then: a few looks (a CI run saw a new leader repeat a suite FAIL its predecessor had
/// published, because one empty listing made the followers drop it).
async fn look_for_leader(
    consumer: &Arc<StreamConsumer<ReportContext>>,
    group: &str,
    tests_topic: &str,
    range: bool,
) -> Option<String> {
    match list_members(consumer, group, tests_topic).await {
        Ok((_, members)) if !members.is_empty() => leader_of(&members, range).map(str::to_owned),
        Ok(_) => None,
        Err(error) => {
            tracing::debug!(%error, "the coordinator cannot say who leads");
            None
        }
    }
}

/// Assigns every partition of the report topic, each at its first report since `since` (or at
/// its beginning where the broker cannot say: librdkafka's mock cluster answers offsets by time
/// with -1); returns the partitions.
fn assign_reports(
    consumer: &StreamConsumer<ReportContext>,
    topic: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<i32>, TransportError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| broker_error(format!("metadata of {topic}"), e))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .first()
        .filter(|t| t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        return Err(TransportError::Config(format!(
            "the report topic {topic} has no partitions"
        )));
    }
    let mut lookup = TopicPartitionList::new();
    for &partition in &partitions {
        let _ =
            lookup.add_partition_offset(topic, partition, Offset::Offset(since.timestamp_millis()));
    }
    let mut tpl = TopicPartitionList::new();
    match consumer.offsets_for_times(lookup, Duration::from_secs(10)) {
        Ok(found) => {
            for element in found.elements() {
                let offset = match element.offset() {
                    Offset::Offset(o) if o >= 0 => Offset::Offset(o),
                    _ => Offset::Beginning,
                };
                let _ = tpl.add_partition_offset(topic, element.partition(), offset);
            }
        }
        Err(error) => {
            tracing::warn!(%error, "report offsets by time unavailable: reading from the start");
            for &partition in &partitions {
                let _ = tpl.add_partition_offset(topic, partition, Offset::Beginning);
            }
        }
    }
    consumer
        .assign(&tpl)
        .map_err(|e| broker_error("assign the report topic", e))?;
    Ok(partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_suite_report_is_adopted_only_from_the_leader_of_this_group() {
        let member = || Some("livecheck-a".to_owned());
        assert_eq!(
            suite_writer("livecheck", Some("livecheck"), member()),
            Ok("livecheck-a".to_owned())
        );
        let stranger = suite_writer("livecheck", Some("other"), member()).unwrap_err();
        assert!(stranger.contains("no worker of this group"), "{stranger}");
        assert!(suite_writer("livecheck", None, member()).is_err());
        let unnamed = suite_writer("livecheck", Some("livecheck"), None).unwrap_err();
        assert!(unnamed.contains("not named"), "{unnamed}");

        assert_eq!(
            written_by_leader("livecheck-a", Some("livecheck-a")),
            Ok(())
        );
        let follower = written_by_leader("livecheck-a", Some("livecheck-b")).unwrap_err();
        assert!(follower.contains("not the group's leader"), "{follower}");
        // A coordinator that does not say who leads vouches for nobody.
        assert!(written_by_leader("livecheck-a", None).is_err());
    }
}
