//! The codec every generated client and server uses: prost, with small initial buffers.
//!
//! tonic's default allocates an 8 KiB decode buffer and an 8 KiB encode buffer for every call
//! when it starts, and a stream keeps them while it lives. A machine's stream is mostly idle and
//! its batches are small (20 readings at 1 Hz are well under 1 KiB), so 10,000 open streams
//! would hold 160 MiB of empty buffers. These start at 256 bytes (an ack, a health check, most
//! unary answers) and grow as a message needs; a stream keeps what it grew to. From 1 KiB to
//! 256 bytes saved 1.6 KB per idle stream (docs/BENCHMARKS.md, "Open streams").

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// Initial size of a call's encode and decode buffers.
pub const INITIAL_BUFFER: usize = 256;
/// How much an encoder buffers before it yields to send (tonic's default).
pub const YIELD_THRESHOLD: usize = 32 * 1024;

/// A prost [`Codec`] whose buffers start at [`INITIAL_BUFFER`] bytes.
#[derive(Debug, Clone, Copy)]
pub struct LeanCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for LeanCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(INITIAL_BUFFER, YIELD_THRESHOLD)
}

impl<T, U> Codec for LeanCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(settings())
    }
}
