//! A staff action from a tablet run as a station command and recorded with who did it, in one
//! write: the path the pickup counter's handover and refusals, the receiving
//! bench's actions and its dispute steps share. The command runs once per request id
//! (`workflows::station::run_app_command_in`: a repeat gets the stored reply); the staff action
//! record (`store::staff::record_action`) names the staff member, station and tablet. It
//! decides nothing itself.

use super::{Session, StationApp};
use crate::store::staff as staff_store;
use crate::store::{StoreError, Tx};
use hub_contract::station::{StationAction, StationCommand, StationReply};
use hub_core::Timestamp;

/// How the action is recorded: its name and a detail (order, delivery/line …).
pub(super) struct Record {
    pub action: &'static str,
    pub detail: String,
}

/// Runs the command `request_id` (its body's `hash`) made by `action` inside the write — so
/// it may read the store first — as `s`'s staff member at `s`'s station, and records it.
pub(super) async fn run_and_record<F>(
    app: &StationApp,
    s: &Session,
    (request_id, hash): (String, String),
    record: Record,
    action: F,
    now: Timestamp,
) -> Result<StationReply, StoreError>
where
    F: FnOnce(&Tx<'_>) -> Result<StationAction, StoreError> + Send + 'static,
{
    let (site, station, staff, device) = (
        app.site.clone(),
        s.station.clone(),
        s.staff_id.clone(),
        s.device_id.clone(),
    );
    app.store
        .write(move |c| {
            let command = StationCommand {
                id: request_id,
                staff: staff.clone(),
                action: action(c)?,
            };
            let reply = crate::workflows::station::run_app_command_in(
                c,
                Some(&site),
                &station,
                &command,
                &hash,
                crate::workflows::station::blank_reply(&station, now),
                now,
            )?;
            staff_store::record_action(
                c,
                &staff_store::Action {
                    staff: Some(&staff),
                    station: Some(&station),
                    device: Some(&device),
                    action: record.action,
                    detail: &record.detail,
                },
                now,
            )?;
            Ok::<_, StoreError>(reply)
        })
        .await
}
