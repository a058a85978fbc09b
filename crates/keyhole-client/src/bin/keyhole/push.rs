//! `keyhole push`: registering this device for Web Push, so a phone or a desktop's push stack
//! is woken for each event even when no `keyhole watch` is running.

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use keyhole_client::push::PushSubscription;

use crate::commands::Device;

/// Prints the server's application server key, to make a subscription with.
pub(crate) async fn key(store: &Path) -> anyhow::Result<()> {
    let device = Device::open_all_synced(store).await?;
    outln!("{}", device.owner.push_key().await?);
    Ok(())
}

/// Registers the subscription in `file` (`-`: standard input), as its push stack wrote it.
pub(crate) async fn register(store: &Path, file: &Path) -> anyhow::Result<()> {
    let text = if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the subscription from standard input")?;
        text
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let subscription: PushSubscription = serde_json::from_str(&text).context(
        "the subscription must be JSON as push stacks write it: \
         {\"endpoint\": URL, \"keys\": {\"p256dh\": KEY, \"auth\": SECRET}}",
    )?;
    let device = Device::open_all_synced(store).await?;
    device
        .owner
        .register_push(&subscription)
        .await
        .context("the server did not take the subscription")?;
    outln!("This device is woken through its push service for each event.");
    Ok(())
}

/// Stops the pushes to this device.
pub(crate) async fn unregister(store: &Path) -> anyhow::Result<()> {
    let device = Device::open_all_synced(store).await?;
    if device.owner.unregister_push().await? {
        outln!("The server no longer pushes to this device.");
    } else {
        outln!("This device had no push subscription.");
    }
    Ok(())
}
