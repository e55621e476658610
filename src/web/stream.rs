//! The dashboard's live stream: Server-Sent Events carrying a new picture
//! of the service (see [`super::overview`]) whenever it changed, looked at
//! once a second (one picture shared by every open dashboard). The page reads it with `fetch`, so the admin key travels
//! in the `Authorization` header as on every other call (`EventSource`
//! cannot send headers). The stream ends when the server shuts down, so
//! an open dashboard never holds up a restart.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use futures::stream::{self, Stream};
use serde_json::Value;
use tokio::sync::watch;

use super::overview::{with_now, SharedPicture};

/// How often the picture is taken again: fresh enough for people, cheap
/// enough for the cluster (one listing of every node's sockets).
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// A picture younger than this is the one every stream shows: streams that
/// look a moment apart share it.
const SHARED_FOR: Duration = Duration::from_millis(900);

struct Watching {
    pictures: Arc<SharedPicture>,
    closing: watch::Receiver<bool>,
    last: Option<Arc<Value>>,
    first: bool,
}

pub async fn stream(
    Extension(pictures): Extension<Arc<SharedPicture>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let closing = pictures.hub().closing();
    let start = Watching {
        pictures,
        closing,
        last: None,
        first: true,
    };
    let events = stream::unfold(start, |mut w| async move {
        loop {
            if !w.first {
                tokio::select! {
                    _ = tokio::time::sleep(LOOK_EVERY) => {}
                    _ = w.closing.wait_for(|c| *c) => return None,
                }
            }
            w.first = false;
            if *w.closing.borrow() {
                return None;
            }
            let picture = w.pictures.get(SHARED_FOR).await;
            if w.last
                .as_ref()
                .is_some_and(|last| Arc::ptr_eq(last, &picture) || **last == *picture)
            {
                continue;
            }
            w.last = Some(picture.clone());
            let data = with_now((*picture).clone(), w.pictures.hub().now()).to_string();
            let event = Event::default().event("overview").data(data);
            return Some((Ok(event), w));
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
