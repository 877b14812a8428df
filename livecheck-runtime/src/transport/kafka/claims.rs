//! Claims of other workers read from the bus, and whether the coordinator vouches for them:
//! only a claim it vouches for fences a partition here (see `offsets`).

use super::members::{Member, Membership};

/// A claim of another worker, read after this worker's own: it fences the partition here only
/// once the coordinator agrees (see [`judge_claims`](super::group_watch::judge_claims)).
#[derive(Debug)]
pub(super) struct ClaimRead {
    pub(super) partition: i32,
    /// The claiming worker's instance (the record's key).
    pub(super) instance: String,
    /// Its member id, as it says.
    pub(super) member: String,
    /// The group generation it claims in.
    pub(super) generation: i64,
}

/// How many claims may wait for the coordinator's word; more are not believed (a flood).
pub(super) const CLAIMS_WAITING: usize = 64;

/// Whether the coordinator's `members` vouch for `claim` (see
/// [`judge_claims`](super::group_watch::judge_claims)); why not.
pub(super) fn judge_claim(
    claim: &ClaimRead,
    ours: Option<&Membership>,
    state: &str,
    members: &[Member],
) -> Result<(), String> {
    // A coordinator that lists nobody says nothing (tansu was seen to describe a live group as
    // `Unknown` with no member).
    if members.is_empty() {
        return Err(format!(
            "the coordinator lists no member (group state {state:?})"
        ));
    }
    if let Some(ours) = ours {
        if i64::from(ours.generation) > claim.generation {
            return Err(format!(
                "claimed in generation {}, this worker's is {}: an earlier owner's",
                claim.generation, ours.generation
            ));
        }
        if state == "Stable" && !members.iter().any(|m| m.id == ours.member) {
            return Ok(()); // this worker is no member any more: its partitions are not its own
        }
    }
    let Some(claimer) = members.iter().find(|m| m.id == claim.member) else {
        let listed: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        return Err(format!("no such member of the group (it lists {listed:?})"));
    };
    let described = members.iter().any(|m| !m.partitions.is_empty());
    if described && !claimer.partitions.contains(&claim.partition) {
        return Err("the coordinator assigned it elsewhere".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::kafka::members::member;

    #[test]
    fn a_claim_fences_only_when_the_coordinator_vouches_for_it() {
        let ours = Membership {
            member: "livecheck-b".into(),
            generation: 7,
        };
        let claim = |member: &str, generation: i64| ClaimRead {
            partition: 1,
            instance: "i".into(),
            member: member.into(),
            generation,
        };
        let undescribed = [member("livecheck-a", &[]), member("livecheck-b", &[])];
        let judge = |c: &ClaimRead, state: &str, members: &[Member]| {
            judge_claim(c, Some(&ours), state, members)
        };
        // A member of the group, in our generation or later: believed.
        assert_eq!(
            judge(&claim("livecheck-a", 7), "Stable", &undescribed),
            Ok(())
        );
        assert_eq!(
            judge(&claim("livecheck-a", 9), "Stable", &undescribed),
            Ok(())
        );
        // An earlier owner's late claim, a stranger, an empty listing: not believed.
        let late = judge(&claim("livecheck-a", 6), "Stable", &undescribed).unwrap_err();
        assert!(late.contains("earlier owner"), "{late}");
        let stranger = judge(&claim("forged", 99), "Stable", &undescribed).unwrap_err();
        assert!(stranger.contains("no such member"), "{stranger}");
        assert!(judge(&claim("livecheck-a", 7), "Unknown", &[]).is_err());
        // Described assignments: the claimer must own the partition.
        let described = [member("livecheck-a", &[0]), member("livecheck-b", &[1])];
        assert!(judge(&claim("livecheck-a", 8), "Stable", &described).is_err());
        let moved = [member("livecheck-a", &[0, 1]), member("livecheck-b", &[2])];
        assert_eq!(judge(&claim("livecheck-a", 8), "Stable", &moved), Ok(()));
        // This worker is no member of the stable group any more: its partitions are not its own.
        let without_us = [member("livecheck-a", &[])];
        assert_eq!(judge(&claim("forged", 7), "Stable", &without_us), Ok(()));
        assert!(judge(&claim("forged", 7), "PreparingRebalance", &without_us).is_err());
    }

    #[test]
    fn the_generation_is_judged_before_the_membership() {
        let ours = Membership {
            member: "livecheck-b".into(),
            generation: 7,
        };
        let claim = ClaimRead {
            partition: 0,
            instance: "i".into(),
            member: "livecheck-a".into(),
            generation: 6,
        };
        // Even out of the stable group, a claim of an earlier generation fences nothing.
        let without_us = [member("livecheck-a", &[0])];
        let late = judge_claim(&claim, Some(&ours), "Stable", &without_us).unwrap_err();
        assert!(late.contains("earlier owner"), "{late}");
    }

    #[test]
    fn without_a_membership_of_its_own_a_worker_believes_the_listing() {
        let claim = |member: &str| ClaimRead {
            partition: 2,
            instance: "i".into(),
            member: member.into(),
            generation: -1,
        };
        let listed = [member("livecheck-a", &[]), member("livecheck-c", &[])];
        assert_eq!(
            judge_claim(&claim("livecheck-a"), None, "Stable", &listed),
            Ok(())
        );
        assert!(judge_claim(&claim("forged"), None, "Stable", &listed).is_err());
        let empty = judge_claim(&claim("livecheck-a"), None, "Unknown", &[]).unwrap_err();
        assert!(empty.contains("no member"), "{empty}");
        let described = [member("livecheck-a", &[0, 1]), member("livecheck-c", &[2])];
        let elsewhere = judge_claim(&claim("livecheck-a"), None, "Stable", &described).unwrap_err();
        assert!(elsewhere.contains("elsewhere"), "{elsewhere}");
        assert_eq!(
            judge_claim(&claim("livecheck-c"), None, "Stable", &described),
            Ok(())
        );
    }
}
