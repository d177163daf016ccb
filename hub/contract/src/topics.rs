//! Topic strings: the tree every site's hub, central and station tablets share (documented in
//! `docs/mqtt.md`). Nothing else builds or parses a topic.

/// First levels of every topic.
const ROOT: &str = "hub/v1";

/// What central subscribes to: everything every site sends up.
pub const CENTRAL_UPLINK_FILTER: &str = "hub/v1/+/up/#";

/// What a central consumer subscribes to when several share the fleet: an MQTT 5 / Mosquitto 2
/// shared subscription of [`CENTRAL_UPLINK_FILTER`], each message delivered to one member of
/// `group`.
pub fn central_shared_uplink_filter(group: &str) -> String {
    format!("$share/{group}/{CENTRAL_UPLINK_FILTER}")
}

/// Every site's sync control (what a fleet simulator, standing in for many hubs, listens to).
pub const FLEET_SYNC_FILTER: &str = "hub/v1/+/down/sync";

/// Uplink events (outbox rows): QoS 1, not retained.
pub fn events_topic(site: &str) -> String {
    format!("{ROOT}/{site}/up/events")
}

/// Command outcomes (`command_applied` / `command_rejected` outbox rows): QoS 1, not retained.
pub fn acks_topic(site: &str) -> String {
    format!("{ROOT}/{site}/up/acks")
}

/// Online/offline status (also the Last Will): QoS 1, retained.
pub fn status_topic(site: &str) -> String {
    format!("{ROOT}/{site}/up/status")
}

/// Periodic heartbeat: QoS 0, not retained.
pub fn heartbeat_topic(site: &str) -> String {
    format!("{ROOT}/{site}/up/heartbeat")
}

/// Commands from central to one site: QoS 1, not retained.
pub fn commands_topic(site: &str) -> String {
    format!("{ROOT}/{site}/down/commands")
}

/// Sync control from central (cursor confirmations, resend requests): QoS 1, not retained.
pub fn sync_topic(site: &str) -> String {
    format!("{ROOT}/{site}/down/sync")
}

/// Staff commands from a station tablet: QoS 1, not retained. The hub subscribes to
/// [`station_filter`].
pub fn station_topic(site: &str, station: &str) -> String {
    format!("{ROOT}/{site}/down/station/{station}")
}

/// Every station's commands of one site.
pub fn station_filter(site: &str) -> String {
    format!("{ROOT}/{site}/down/station/+")
}

/// Answers to a station's commands: QoS 1, not retained, not through the outbox.
pub fn station_reply_topic(site: &str, station: &str) -> String {
    format!("{ROOT}/{site}/up/station/{station}/reply")
}

/// Parses a station command topic into the site and the station.
pub fn parse_station_topic(topic: &str) -> Option<(&str, &str)> {
    let (site, dir, leaf) = split_topic(topic)?;
    let station = leaf.strip_prefix("station/")?;
    (dir == "down" && site_fits_topic(station)).then_some((site, station))
}

/// Local device topics on the site's own broker (scales, scanners): `…/local/devices/{id}/{leaf}`.
pub fn device_topic(site: &str, device: &str, leaf: &str) -> String {
    format!("{ROOT}/{site}/local/devices/{device}/{leaf}")
}

/// Which uplink topic a message arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpTopic {
    Events,
    Acks,
    Status,
    Heartbeat,
}

/// Which downlink topic a message arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownTopic {
    Commands,
    Sync,
}

fn split_topic(topic: &str) -> Option<(&str, &str, &str)> {
    let rest = topic.strip_prefix(ROOT)?.strip_prefix('/')?;
    let mut parts = rest.splitn(3, '/');
    let site = parts.next()?;
    let dir = parts.next()?;
    let leaf = parts.next()?;
    (!site.is_empty()).then_some((site, dir, leaf))
}

/// Parses an uplink topic into the site and the kind of message.
pub fn parse_up_topic(topic: &str) -> Option<(&str, UpTopic)> {
    let (site, dir, leaf) = split_topic(topic)?;
    if dir != "up" {
        return None;
    }
    let kind = match leaf {
        "events" => UpTopic::Events,
        "acks" => UpTopic::Acks,
        "status" => UpTopic::Status,
        "heartbeat" => UpTopic::Heartbeat,
        _ => return None,
    };
    Some((site, kind))
}

/// Parses a downlink topic into the site and the kind of message.
pub fn parse_down_topic(topic: &str) -> Option<(&str, DownTopic)> {
    let (site, dir, leaf) = split_topic(topic)?;
    if dir != "down" {
        return None;
    }
    match leaf {
        "commands" => Some((site, DownTopic::Commands)),
        "sync" => Some((site, DownTopic::Sync)),
        _ => None,
    }
}

/// Whether a site id can be used as one topic level (no `/`, `+`, `#`).
pub fn site_fits_topic(site: &str) -> bool {
    !site.is_empty() && !site.contains(['/', '+', '#'])
}

/// The topic an outbox row goes to: command outcomes on the acks topic, the rest on events.
pub fn topic_for_event(site: &str, kind: &str) -> String {
    if kind == "command_applied" || kind == "command_rejected" {
        acks_topic(site)
    } else {
        events_topic(site)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        assert_eq!(events_topic("s1"), "hub/v1/s1/up/events");
        assert_eq!(
            parse_up_topic(&status_topic("s-2")),
            Some(("s-2", UpTopic::Status))
        );
        assert_eq!(
            parse_down_topic(&commands_topic("s1")),
            Some(("s1", DownTopic::Commands))
        );
        assert_eq!(parse_up_topic("hub/v1/s1/down/commands"), None);
        assert!(!site_fits_topic("a/b"));
    }

    #[test]
    fn station_topics_name_their_site_and_station() {
        let topic = station_topic("s1", "counter-1");
        assert_eq!(parse_station_topic(&topic), Some(("s1", "counter-1")));
        assert_eq!(
            station_reply_topic("s1", "counter-1"),
            "hub/v1/s1/up/station/counter-1/reply"
        );
        assert_eq!(station_filter("s1"), "hub/v1/s1/down/station/+");
        assert_eq!(parse_station_topic("hub/v1/s1/up/station/counter-1"), None);
        assert_eq!(parse_station_topic("hub/v1/s1/down/station/a/b"), None);
        assert_eq!(
            device_topic("s1", "scale-1", "weight"),
            "hub/v1/s1/local/devices/scale-1/weight"
        );
    }
}
