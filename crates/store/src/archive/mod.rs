//! Export and import of one session as a JSON-serializable archive: the document
//! ([`SessionArchive`](document::SessionArchive)), its validation before import, and the two
//! operations.

pub(crate) mod check;
pub(crate) mod document;
mod export;
