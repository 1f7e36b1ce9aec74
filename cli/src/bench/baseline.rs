//! The baseline: bare lapin request/reply with a trivial echo consumer.
//!
//! It does what a plughost call does on the broker (publish mandatory with
//! confirms through a topic exchange to a shared queue, consume with the
//! same prefetch, reply to `reply_to` by correlation id, ack after the
//! reply), and nothing else: no name service, no JSON, no plugin. Its
//! calls/s is the ceiling plughost is measured against.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures_util::StreamExt;
use lapin::{
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::FieldTable,
    BasicProperties, ExchangeKind,
};
use tokio::sync::oneshot;

use super::{closed_loop, BenchReport, LoadShape, Progress};
use plughost_client::{
    connection::{connect, TlsFiles, DEFAULT_CONNECT_TIMEOUT},
    ReplyMode, RpcError,
};

fn unavailable(url: &str) -> impl Fn(lapin::Error) -> RpcError + '_ {
    move |e| RpcError::BrokerUnavailable {
        url: plughost_client::connection::redact(url),
        reason: e.to_string(),
    }
}

/// A server-named queue that lives as long as the connection.
async fn exclusive_queue(channel: &lapin::Channel) -> lapin::Result<String> {
    let options = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    let queue = channel
        .queue_declare("".into(), options, FieldTable::default())
        .await?;
    Ok(queue.name().to_string())
}

/// Runs the baseline against the broker at `url` (connected the way every
/// plughost connection is, so `amqps://` works here too).
pub async fn baseline(
    url: &str,
    tls: &TlsFiles,
    reply_mode: ReplyMode,
    prefetch: u16,
    shape: LoadShape,
    progress: Progress,
) -> Result<BenchReport, RpcError> {
    let fail = unavailable(url);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let exchange = format!("plughost.bench.{id}");

    // The echo side, on its own connection as a host would be.
    let server = connect(url, tls, "plughost bench echo", DEFAULT_CONNECT_TIMEOUT).await?;
    let sch = server.create_channel().await.map_err(&fail)?;
    sch.exchange_declare(
        exchange.as_str().into(),
        ExchangeKind::Topic,
        Default::default(),
        FieldTable::default(),
    )
    .await
    .map_err(&fail)?;
    let queue = exclusive_queue(&sch).await.map_err(&fail)?;
    sch.queue_bind(
        queue.as_str().into(),
        exchange.as_str().into(),
        "echo".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(&fail)?;
    sch.basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(&fail)?;
    let replies = server.create_channel().await.map_err(&fail)?;
    let mut requests = sch
        .basic_consume(
            queue.as_str().into(),
            "echo".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(&fail)?;
    let echo = tokio::spawn(async move {
        while let Some(Ok(delivery)) = requests.next().await {
            let replies = replies.clone();
            tokio::spawn(async move {
                let props = &delivery.properties;
                if let Some(reply_to) = props.reply_to() {
                    let reply_props = BasicProperties::default()
                        .with_correlation_id(props.correlation_id().clone().unwrap_or_default());
                    let _ = replies
                        .basic_publish(
                            "".into(),
                            reply_to.clone(),
                            BasicPublishOptions::default(),
                            &delivery.data,
                            reply_props,
                        )
                        .await;
                }
                let _ = delivery.ack(BasicAckOptions::default()).await;
            });
        }
    });

    // The calling side: one connection, one channel with confirms, one reply address.
    let client = connect(url, tls, "plughost bench caller", DEFAULT_CONNECT_TIMEOUT).await?;
    let ch = client.create_channel().await.map_err(&fail)?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(&fail)?;
    let reply_to = match reply_mode {
        ReplyMode::DirectReplyTo => "amq.rabbitmq.reply-to".to_owned(),
        ReplyMode::ExclusiveQueue => exclusive_queue(&ch).await.map_err(&fail)?,
    };
    let pending: Arc<Mutex<HashMap<String, oneshot::Sender<()>>>> = Arc::default();
    let mut reply_stream = ch
        .basic_consume(
            reply_to.as_str().into(),
            "replies".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(&fail)?;
    let reader = {
        let pending = Arc::clone(&pending);
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = reply_stream.next().await {
                if let Some(id) = delivery.properties.correlation_id() {
                    let tx = pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(id.as_str());
                    if let Some(tx) = tx {
                        let _ = tx.send(());
                    }
                }
            }
        })
    };

    let report = closed_loop(shape, progress, {
        let (ch, exchange, reply_to, pending) = (
            ch.clone(),
            exchange.clone(),
            reply_to.clone(),
            Arc::clone(&pending),
        );
        move || {
            let (ch, exchange, reply_to, pending) = (
                ch.clone(),
                exchange.clone(),
                reply_to.clone(),
                Arc::clone(&pending),
            );
            async move {
                let id = uuid::Uuid::new_v4().to_string();
                let (tx, rx) = oneshot::channel();
                pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id.clone(), tx);
                let props = BasicProperties::default()
                    .with_correlation_id(id.as_str().into())
                    .with_reply_to(reply_to.as_str().into());
                let options = BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                };
                let confirm = ch
                    .basic_publish(
                        exchange.as_str().into(),
                        "echo".into(),
                        options,
                        b"[20]",
                        props,
                    )
                    .await
                    .map_err(|_| 503u16)?;
                confirm.await.map_err(|_| 503u16)?;
                rx.await.map_err(|_| 503u16)
            }
        }
    })
    .await;

    echo.abort();
    reader.abort();
    let _ = sch
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await;
    let _ = client.close(200, "bench done".into()).await;
    let _ = server.close(200, "bench done".into()).await;
    Ok(report)
}
