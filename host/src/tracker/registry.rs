//! The service manager's registry: which services are alive, keyed by uuid.
//!
//! Pure bookkeeping with the clock passed in, so expiry is unit-tested
//! without sleeping; the manager owns one and feeds it messages.

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
}

/// Services by uuid, in the order they registered.
#[derive(Debug, Default)]
pub struct ServiceRegistry {
    entries: BTreeMap<Uid, ServiceEntry>,
    order: Vec<Uid>,
}

impl ServiceRegistry {
    /// Adds or refreshes a service after INIT or HELLO.
    pub fn touch(
        &mut self,
        address: &RawAddress,
        kind: RawMessageType,
        details: Option<serde_json::Value>,
        now: Instant,
    ) {
        let uid = address.uid();
        match self.entries.get_mut(&uid) {
            Some(entry) => {
                entry.address = address.clone();
                entry.last_msg_type = kind;
                entry.last_update = now;
                if details.is_some() {
                    entry.details = details;
                }
            }
            None => {
                self.order.push(uid);
                self.entries.insert(
                    uid,
                    ServiceEntry {
                        address: address.clone(),
                        last_msg_type: kind,
                        last_update: now,
                        details,
                    },
                );
            }
        }
    }

    /// Removes a service (BYE); true if it was registered.
    pub fn remove(&mut self, uid: &Uid) -> bool {
        self.order.retain(|u| u != uid);
        self.entries.remove(uid).is_some()
    }

    /// Drops services not heard from for `ttl`; returns them.
    pub fn expire(&mut self, now: Instant, ttl: Duration) -> Vec<RawAddress> {
        let stale: Vec<Uid> = self
            .entries
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_update) > ttl)
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

    /// The v1 listing text (WIRE.md §2), one line per service.
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
        let gone = r.expire(t0 + Duration::from_millis(3500), Duration::from_secs(3));
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
