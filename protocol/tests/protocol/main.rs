//! Integration tests of oc-protocol: properties of the wire types, the OpenAPI document and the
//! rule catalogue against PROTOCOL.md.

mod catalogue;
mod openapi;
mod properties;
