//! The site's local MQTT broker (Mosquitto on the box, where networked scanners, scales and
//! cameras publish): the one subscriber loop every hub client on it runs. It connects with a
//! clean session, renews its subscriptions on every connection, only polls the rumqttc event
//! loop (publishing from the polling task can deadlock rumqttc), and reconnects with capped,
//! jittered backoff. What the traffic means is the handler's: networked devices
//! (`mqtt_devices`) and camera photos (`crate::vision`) each bring one.
//!
//! Devices and photos keep separate connections on purpose: a photo over the size limit ends
//! its connection (rumqttc refuses the packet), and that must not take the scanners with it.

use crate::config::devices::BrokerConfig;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::future::Future;
use std::ops::ControlFlow;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One client on the local broker.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub client_id: String,
    pub topics: Vec<String>,
    /// Largest packet accepted from the broker; a bigger one ends the connection.
    pub max_incoming_bytes: usize,
    /// Requests rumqttc may queue.
    pub queue: usize,
}

/// What a subscriber does with the traffic. Returning `ControlFlow::Break` ends the loop (the
/// receiving side has gone away).
pub trait LocalHandler: Send {
    /// Connected, subscriptions requested.
    fn connected(&mut self) -> impl Future<Output = ControlFlow<()>> + Send;
    /// A message on one of the subscribed topics.
    fn message(
        &mut self,
        topic: &str,
        payload: &[u8],
    ) -> impl Future<Output = ControlFlow<()>> + Send;
    /// The connection failed or was lost; `reason` says why. It is retried after a backoff.
    fn lost(&mut self, reason: &str) -> impl Future<Output = ControlFlow<()>> + Send;
}

/// Runs `subscription` on `broker` until shutdown (or until the handler breaks).
pub async fn run(
    broker: &BrokerConfig,
    subscription: Subscription,
    handler: &mut impl LocalHandler,
    shutdown: &CancellationToken,
) {
    let mut options = MqttOptions::new(
        subscription.client_id.clone(),
        broker.host.clone(),
        broker.port,
    );
    options.set_keep_alive(Duration::from_secs(15));
    options.set_clean_session(true);
    options.set_max_packet_size(subscription.max_incoming_bytes, 64 * 1024);
    let (client, mut eventloop) = AsyncClient::new(options, subscription.queue);
    let mut backoff = super::reconnect_backoff(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        let polled = tokio::select! {
            _ = shutdown.cancelled() => break,
            polled = eventloop.poll() => polled,
        };
        let flow = match polled {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                // Clean session: subscriptions are renewed on every connection. try_subscribe
                // never waits, so the polling task cannot deadlock on its own queue.
                for topic in &subscription.topics {
                    if let Err(e) = client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                        tracing::warn!(%topic, error = %e, "cannot subscribe on the local broker");
                    }
                }
                handler.connected().await
            }
            Ok(Event::Incoming(Packet::Publish(p))) => handler.message(&p.topic, &p.payload).await,
            Ok(_) => ControlFlow::Continue(()),
            Err(e) => {
                let reason = format!(
                    "local broker {}:{} unreachable: {e}",
                    broker.host, broker.port
                );
                if handler.lost(&reason).await.is_break() {
                    break;
                }
                let delay = backoff.next_delay(rand::random());
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
                ControlFlow::Continue(())
            }
        };
        if flow.is_break() {
            break;
        }
    }
    let _ = client.try_disconnect();
}
