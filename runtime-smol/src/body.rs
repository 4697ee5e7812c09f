//! The body of a streamed response: an `AsyncBufRead` that async-h1 reads (and chunk-encodes)
//! while the drive loop fills it. Every chunk is handed out as soon as it arrives, so each
//! `Forward` reaches the client at once. Dropped before its end (the client went away, a write
//! failed), it tells the drive loop.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use smol::channel::{Receiver, Sender};
use smol::io::{AsyncBufRead, AsyncRead};
use smol::stream::Stream;

/// Reads what the drive loop sends; ends when the drive loop closes the channel.
#[derive(Debug)]
pub(crate) struct StreamBody {
    chunks: Pin<Box<Receiver<Bytes>>>,
    current: Bytes,
    ended: bool,
    gone: Sender<()>,
}

impl StreamBody {
    /// A body fed by `chunks`; `gone` is told if the body is dropped before its end.
    pub(crate) fn new(chunks: Receiver<Bytes>, gone: Sender<()>) -> StreamBody {
        StreamBody {
            chunks: Box::pin(chunks),
            current: Bytes::new(),
            ended: false,
            gone,
        }
    }
}

impl AsyncBufRead for StreamBody {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        while this.current.is_empty() && !this.ended {
            match this.chunks.as_mut().poll_next(cx) {
                Poll::Ready(Some(chunk)) => this.current = chunk,
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(&this.current[..]))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.current.advance(amt.min(this.current.len()));
    }
}

impl AsyncRead for StreamBody {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let n = match self.as_mut().poll_fill_buf(cx) {
            Poll::Ready(Ok(data)) => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                n
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        self.consume(n);
        Poll::Ready(Ok(n))
    }
}

impl Drop for StreamBody {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.gone.try_send(());
        }
    }
}
