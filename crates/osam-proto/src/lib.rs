//! The osam.v1 gRPC contract: messages, clients and servers generated from `proto/osam/v1`,
//! and the encoded file descriptor set that server reflection serves.

#![forbid(unsafe_code)]

/// The `osam.v1` package.
pub mod v1 {
    #![allow(clippy::doc_lazy_continuation, clippy::large_enum_variant)]
    tonic::include_proto!("osam.v1");
}

/// The encoded `FileDescriptorSet` of every osam.v1 file, for reflection and for tests that
/// enumerate the contract's methods.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("osam_v1_descriptor");
