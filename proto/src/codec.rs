//! The codec every generated client and server uses: prost, with small initial buffers, and
//! errors that say whose fault an undecodable message is.
//!
//! tonic answers a message that cannot be decoded with INTERNAL. A request that is not the
//! protobuf its RPC takes is the caller's mistake, so it is INVALID_ARGUMENT here; an answer that
//! cannot be decoded stays INTERNAL, since only a bug of ours sends one.
//!
//! tonic's default allocates an 8 KiB decode buffer and an 8 KiB encode buffer for every call
//! when it starts, and a stream keeps them while it lives. A machine's stream is mostly idle and
//! its batches are small (20 readings at 1 Hz are well under 1 KiB), so 10,000 open streams
//! would hold 160 MiB of empty buffers. These start at 256 bytes (an ack, a health check, most
//! unary answers) and grow as a message needs; a stream keeps what it grew to. From 1 KiB to
//! 256 bytes saved 1.6 KB per idle stream (docs/BENCHMARKS.md, "Open streams").

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// Which side of an RPC decodes a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An RPC's request, decoded by the server.
    Request,
    /// An RPC's response, decoded by the client.
    Response,
}

/// A message that is the request or the response of an RPC of the contract.
pub trait Decoded {
    /// Which side decodes it.
    const ROLE: Role;
}

// `impl Decoded for …` for every RPC's request and response, from the contract (build.rs).
include!(concat!(env!("OUT_DIR"), "/codec_roles.rs"));

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
    U: Message + Default + Decoded + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = LeanDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        LeanDecoder(ProstDecoder::new(settings()))
    }
}

/// prost's decoder, whose errors name the side at fault.
#[derive(Debug)]
pub struct LeanDecoder<U>(ProstDecoder<U>);

impl<U> Decoder for LeanDecoder<U>
where
    U: Message + Default + Decoded,
{
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| match U::ROLE {
            // prost's message names where decoding failed, never a value of the caller's.
            Role::Request => Status::invalid_argument(format!(
                "the request is not a valid protobuf message of its RPC: {}",
                status.message()
            )),
            Role::Response => status,
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// Messages as their encoded bytes, passed through as they are: for calls of any RPC whose
/// messages are built or read from the descriptors (the gateway's transcoder), and for tests
/// that send what no message decodes.
#[derive(Debug, Default, Clone, Copy)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = prost::bytes::Bytes;
    type Decode = prost::bytes::Bytes;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        Self
    }

    fn decoder(&mut self) -> Self {
        Self
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = prost::bytes::Bytes;
    type Error = Status;

    fn encode(
        &mut self,
        item: prost::bytes::Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Status> {
        prost::bytes::BufMut::put(dst, item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = prost::bytes::Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<prost::bytes::Bytes>, Status> {
        let remaining = prost::bytes::Buf::remaining(src);
        Ok(Some(prost::bytes::Buf::copy_to_bytes(src, remaining)))
    }
}
