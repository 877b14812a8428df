//! Who is who in the consumer group: this worker's membership as its consumer knows it, the
//! members as the coordinator describes them, and which of them leads.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use crate::transport::group::{assigned_partitions, subscribed_topics};

/// A worker's membership of its consumer group, as its consumer knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Membership {
    /// The member id the coordinator gave it.
    pub(super) member: String,
    /// The group's generation of its latest assignment.
    pub(super) generation: i32,
}

/// The member id and generation of a consumer, as librdkafka knows them (`None` before it
/// joined). rdkafka has no safe accessor for them.
pub(super) fn membership<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
) -> Option<Membership> {
    use rdkafka::bindings as rd;
    // SAFETY: `native_ptr` is a live handle for the borrow of `client`. librdkafka returns a
    // copy of the group metadata (or null), owned by us: read, then destroyed once; the member
    // id it points to lives as long as that copy and is copied out before the destroy.
    unsafe {
        let metadata = rd::rd_kafka_consumer_group_metadata(client.native_ptr());
        if metadata.is_null() {
            return None;
        }
        let member = rd::rd_kafka_consumer_group_metadata_member_id(metadata);
        let member = (!member.is_null()).then(|| {
            std::ffi::CStr::from_ptr(member)
                .to_string_lossy()
                .into_owned()
        });
        let generation = rd::rd_kafka_consumer_group_metadata_generation_id(metadata);
        rd::rd_kafka_consumer_group_metadata_destroy(metadata);
        member
            .filter(|m| !m.is_empty())
            .map(|member| Membership { member, generation })
    }
}

/// A member of the group as the coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Member {
    pub(super) id: String,
    /// Its partitions of the tests topic (empty where the broker does not describe
    /// assignments).
    pub(super) partitions: Vec<i32>,
    /// Whether it subscribes to the tests topic (true where its subscription does not read).
    pub(super) subscribed: bool,
}

/// The members of `group`, with their partitions of `topic`.
pub(super) fn members_of(
    list: &rdkafka::groups::GroupList,
    group: &str,
    topic: &str,
) -> Vec<Member> {
    list.groups()
        .iter()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.members())
        .map(|member| Member {
            id: member.id().to_owned(),
            partitions: member
                .assignment()
                .filter(|bytes| !bytes.is_empty())
                .and_then(|bytes| assigned_partitions(bytes, topic))
                .unwrap_or_default(),
            subscribed: member
                .metadata()
                .and_then(subscribed_topics)
                .is_none_or(|topics| topics.iter().any(|t| t == topic)),
        })
        .collect()
}

/// Why the coordinator could not tell who is in the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Unasked {
    /// The broker cannot describe groups at all (librdkafka's mock cluster).
    Unsupported,
    /// The look failed (timeout, broker gone, ...).
    Failed(String),
}

impl std::fmt::Display for Unasked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unasked::Unsupported => f.write_str("the broker cannot describe consumer groups"),
            Unasked::Failed(why) => f.write_str(why),
        }
    }
}

/// The group's state and its members (with their partitions of `topic`), as the coordinator
/// lists them; why it cannot be asked. tansu may leave a live group out of a listing now and
/// then: up to three looks, 300 ms apart, until one lists a member (else the last look).
pub(super) async fn list_members<C: ConsumerContext + 'static>(
    consumer: &Arc<StreamConsumer<C>>,
    group: &str,
    topic: &str,
) -> Result<(String, Vec<Member>), Unasked> {
    let mut look = Err(Unasked::Failed(String::new()));
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let (consumer, group, topic) = (consumer.clone(), group.to_owned(), topic.to_owned());
        look = tokio::task::spawn_blocking(move || {
            consumer
                .fetch_group_list(Some(&group), Duration::from_secs(5))
                .map(|list| {
                    let state = list
                        .groups()
                        .iter()
                        .find(|g| g.name() == group)
                        .map_or_else(String::new, |g| g.state().to_owned());
                    (state, members_of(&list, &group, &topic))
                })
                .map_err(|error| {
                    if error.rdkafka_error_code() == Some(RDKafkaErrorCode::UnsupportedFeature) {
                        Unasked::Unsupported
                    } else {
                        Unasked::Failed(error.to_string())
                    }
                })
        })
        .await
        .unwrap_or_else(|error| Err(Unasked::Failed(error.to_string())));
        if matches!(look, Err(Unasked::Unsupported)) {
            break;
        }
        if look.as_ref().is_ok_and(|(_, members)| !members.is_empty()) {
            break;
        }
    }
    look
}

/// The leader among `members` — the owner of partition 0 of the tests topic — as far as the
/// coordinator's description tells: the member assigned partition 0 where assignments are
/// described; else, under the range assignor (`range`, livecheck's default), the first
/// subscribed member in member-id order, which is the one the range assignor gives partition 0.
pub(super) fn leader_of(members: &[Member], range: bool) -> Option<&str> {
    if members.iter().any(|m| !m.partitions.is_empty()) {
        return members
            .iter()
            .find(|m| m.partitions.contains(&0))
            .map(|m| m.id.as_str());
    }
    if !range {
        return None;
    }
    members
        .iter()
        .filter(|m| m.subscribed)
        .map(|m| m.id.as_str())
        .min()
}

/// A subscribed member with `partitions`, for the unit tests of the claim judge and the leader.
#[cfg(test)]
pub(super) fn member(id: &str, partitions: &[i32]) -> Member {
    Member {
        id: id.into(),
        partitions: partitions.to_vec(),
        subscribed: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_is_the_owner_of_partition_0() {
        let described = [member("b", &[0, 1]), member("a", &[2, 3])];
        assert_eq!(leader_of(&described, true), Some("b"));
        // Undescribed, under the range assignor: the first subscribed member by id.
        let mut undescribed = vec![member("livecheck-b", &[]), member("livecheck-a", &[])];
        assert_eq!(leader_of(&undescribed, true), Some("livecheck-a"));
        assert_eq!(
            leader_of(&undescribed, false),
            None,
            "another assignor: unknown"
        );
        undescribed[1].subscribed = false;
        assert_eq!(leader_of(&undescribed, true), Some("livecheck-b"));
        assert_eq!(leader_of(&[], true), None);
    }
}
