//! The service manager's registry: which services are alive, keyed by uuid.
//!
//! Pure bookkeeping with the clock passed in, so expiry is unit-tested
//! without sleeping; the manager owns one and feeds it messages.
//!
//! Expiry differs by protocol. A v2 service (one that sends plughost's JSON
//! line after `init`/`hello`) heartbeats at the configured pace and expires
//! after the configured TTL. A v1 service heartbeats at its own pace (the
//! old service says hello every tenth poll wake-up, about every 8-9 s) and
//! never says bye, so its TTL follows what it shows: one and a half times
//! the longest of its last few intervals, no shorter than the v2 TTL and no
//! longer than the v1 ceiling (the old manager's 60 s, also used until a
//! second message shows an interval). A live old service stays listed, and
//! a dead one goes within 1.5 of its intervals plus one sweep.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde::Serialize;

use plughost_proto::{
    address::RawAddress,
    raw::{format_listing, ListingEntry, RawMessageType},
    uid::Uid,
};

/// One registered service.
#[derive(Debug, Clone)]
pub struct ServiceEntry {
    /// Its name and uuid.
    pub address: RawAddress,
    /// The last INIT or HELLO.
    pub last_msg_type: RawMessageType,
    /// When it was last heard from.
    pub last_update: Instant,
    /// What a v2 service said about itself (host, plugin, methods), if anything.
    pub details: Option<serde_json::Value>,
    /// True once the service has sent plughost's v2 line.
    pub v2: bool,
    /// Its last few heartbeat intervals, newest last.
    intervals: Vec<Duration>,
}

/// How many recent intervals a v1 service's TTL looks at.
const RECENT_INTERVALS: usize = 4;

impl ServiceEntry {
    /// How long this service may stay silent before it is dropped.
    pub fn ttl(&self, ttl: Duration, v1_ttl: Duration) -> Duration {
        if self.v2 {
            return ttl;
        }
        match self.intervals.iter().max() {
            Some(longest) => longest.mul_f64(1.5).clamp(ttl, v1_ttl.max(ttl)),
            None => v1_ttl.max(ttl),
        }
    }
}

/// The JSON form of an entry (the v2 listing).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ServiceInfo {
    /// Service name.
    pub name: String,
    /// Service uuid.
    pub uuid: String,
    /// `init` or `hello`.
    pub last_msg_type: String,
    /// Seconds since the last message.
    pub age_secs: f64,
    /// v2 details (host, plugin, methods), when the service sent them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// `v1` (an old-style service: no JSON line, ignores stop) or `v2`.
    #[serde(default)]
    pub protocol: String,
}

/// Services by uuid, in the order they registered.
#[derive(Debug, Default)]
pub struct ServiceRegistry {
    entries: BTreeMap<Uid, ServiceEntry>,
    order: Vec<Uid>,
}

impl ServiceRegistry {
    /// Adds or refreshes a service after INIT or HELLO; true when it was
    /// not registered before.
    pub fn touch(
        &mut self,
        address: &RawAddress,
        kind: RawMessageType,
        details: Option<serde_json::Value>,
        now: Instant,
    ) -> bool {
        let uid = address.uid();
        match self.entries.get_mut(&uid) {
            Some(entry) => {
                // A heartbeat repeats the address: copy it only when the
                // name changed (no allocation per heartbeat).
                if entry.address != *address {
                    entry.address = address.clone();
                }
                entry.last_msg_type = kind;
                if entry.intervals.len() == RECENT_INTERVALS {
                    entry.intervals.remove(0);
                }
                entry
                    .intervals
                    .push(now.saturating_duration_since(entry.last_update));
                entry.last_update = now;
                if details.is_some() {
                    entry.v2 = true;
                    entry.details = details;
                }
                false
            }
            None => {
                self.order.push(uid);
                self.entries.insert(
                    uid,
                    ServiceEntry {
                        address: address.clone(),
                        last_msg_type: kind,
                        last_update: now,
                        v2: details.is_some(),
                        details,
                        intervals: Vec::new(),
                    },
                );
                true
            }
        }
    }

    /// Removes a service (BYE); true if it was registered.
    pub fn remove(&mut self, uid: &Uid) -> bool {
        self.order.retain(|u| u != uid);
        self.entries.remove(uid).is_some()
    }

    /// Drops services silent for longer than their TTL (`ttl` for v2
    /// services, see the module comment for v1 ones); returns them.
    pub fn expire(&mut self, now: Instant, ttl: Duration, v1_ttl: Duration) -> Vec<RawAddress> {
        let stale: Vec<Uid> = self
            .entries
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_update) > e.ttl(ttl, v1_ttl))
            .map(|(uid, _)| *uid)
            .collect();
        stale
            .iter()
            .filter_map(|uid| {
                self.order.retain(|u| u != uid);
                self.entries.remove(uid).map(|e| e.address)
            })
            .collect()
    }

    /// One service.
    pub fn get(&self, uid: &Uid) -> Option<&ServiceEntry> {
        self.entries.get(uid)
    }

    /// How many services are registered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when none are.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn in_order(&self) -> impl Iterator<Item = &ServiceEntry> {
        self.order.iter().filter_map(|uid| self.entries.get(uid))
    }

    /// The v1 listing text (docs/wire.md §2), one line per service.
    pub fn listing(&self, now: Instant) -> String {
        let entries: Vec<ListingEntry> = self
            .in_order()
            .enumerate()
            .map(|(i, e)| {
                ListingEntry::new(
                    i + 1,
                    e.address.clone(),
                    now.saturating_duration_since(e.last_update).as_secs_f64(),
                    e.last_msg_type,
                )
            })
            .collect();
        format_listing(&entries)
    }

    /// The v2 listing.
    pub fn infos(&self, now: Instant) -> Vec<ServiceInfo> {
        self.in_order()
            .map(|e| ServiceInfo {
                name: e.address.name().to_owned(),
                uuid: e.address.uid().to_string(),
                last_msg_type: e.last_msg_type.as_str().to_owned(),
                age_secs: now.saturating_duration_since(e.last_update).as_secs_f64(),
                details: e.details.clone(),
                protocol: if e.v2 { "v2" } else { "v1" }.to_owned(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str) -> RawAddress {
        RawAddress::new(name, Uid::new_v4()).unwrap()
    }

    #[test]
    fn touch_refresh_remove_and_expire() {
        let t0 = Instant::now();
        let mut r = ServiceRegistry::default();
        let (a, b) = (service("A"), service("B"));
        r.touch(&a, RawMessageType::Init, None, t0);
        r.touch(&b, RawMessageType::Init, None, t0);
        r.touch(&a, RawMessageType::Hello, None, t0 + Duration::from_secs(2));
        assert_eq!(r.len(), 2);
        assert_eq!(
            r.get(&a.uid()).unwrap().last_msg_type,
            RawMessageType::Hello
        );
        let gone = r.expire(
            t0 + Duration::from_millis(3500),
            Duration::from_secs(3),
            Duration::from_secs(3),
        );
        assert_eq!(
            gone,
            std::slice::from_ref(&b),
            "B was silent for 3.5 s, A for 1.5 s"
        );
        assert!(r.remove(&a.uid()));
        assert!(!r.remove(&a.uid()));
        assert!(r.is_empty());
    }

    #[test]
    fn a_v1_service_keeps_its_own_pace_and_a_v2_service_the_ttl() {
        let t0 = Instant::now();
        let (ttl, v1_ttl) = (Duration::from_secs(3), Duration::from_secs(60));
        let secs = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut r = ServiceRegistry::default();
        let (old, new) = (service("Old"), service("New"));
        let details = Some(serde_json::json!({}));
        r.touch(&old, RawMessageType::Init, None, t0);
        r.touch(&new, RawMessageType::Init, details.clone(), t0);
        // Before a second message, an old service gets the old manager's 60 s.
        assert_eq!(
            r.expire(secs(30.0), ttl, v1_ttl),
            std::slice::from_ref(&new)
        );
        // It says hello every 8-9 s: never dropped in between.
        let mut t = 0.0;
        for step in [8.0, 9.0, 8.5, 9.0, 8.0, 9.0] {
            assert!(
                r.expire(secs(t + step - 0.01), ttl, v1_ttl).is_empty(),
                "at {t}+{step}"
            );
            t += step;
            r.touch(&old, RawMessageType::Hello, None, secs(t));
        }
        // Dead after its last hello: gone within twice its longest interval.
        assert!(r.expire(secs(t + 13.4), ttl, v1_ttl).is_empty());
        assert_eq!(
            r.expire(secs(t + 13.6), ttl, v1_ttl),
            std::slice::from_ref(&old)
        );
        // A v2 service keeps the fast TTL.
        r.touch(&new, RawMessageType::Init, details, secs(100.0));
        assert!(r.expire(secs(102.9), ttl, v1_ttl).is_empty());
        assert_eq!(
            r.expire(secs(103.1), ttl, v1_ttl),
            std::slice::from_ref(&new)
        );
        assert!(r.is_empty());
    }

    #[test]
    fn listing_is_the_old_format_in_registration_order() {
        let t0 = Instant::now();
        let mut r = ServiceRegistry::default();
        let (a, b) = (service("Service 1"), service("Service 2"));
        r.touch(&a, RawMessageType::Init, None, t0);
        r.touch(&b, RawMessageType::Hello, None, t0);
        let text = r.listing(t0 + Duration::from_millis(1500));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            format!("[1] : service_name = Service 1 : service_id = {} :time_since_lastUpdate = 1.5 : last_msg_type = init", a.uid())
        );
        assert!(
            lines[1].starts_with("[2] : service_name = Service 2"),
            "{text}"
        );
        assert!(text.ends_with('\n'));
        let infos = r.infos(t0);
        assert_eq!(infos[1].last_msg_type, "hello");
    }
}
