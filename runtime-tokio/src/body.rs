//! The response body hyper writes: a whole body, or a stream fed by the drive loop.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use switchback_core::response::ClientResponse;
use tokio::sync::mpsc;

/// A whole body (sent with `Content-Length`) or a channel whose every message is written as
/// one frame at once; the body ends when the sender is dropped.
#[derive(Debug)]
pub(crate) enum ResponseBody {
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Bytes>),
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ResponseBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            ResponseBody::Channel(rx) => rx.poll_recv(cx).map(|d| d.map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ResponseBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            ResponseBody::Channel(_) => SizeHint::default(),
        }
    }
}

/// A hyper response for a whole core response.
pub(crate) fn full(resp: ClientResponse) -> hyper::Response<ResponseBody> {
    let mut out = hyper::Response::new(ResponseBody::Full(
        (!resp.body.is_empty()).then_some(resp.body),
    ));
    *out.status_mut() = resp.status;
    *out.headers_mut() = resp.headers;
    out
}
