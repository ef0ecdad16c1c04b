//! Session bodies handed to tantivy's indexing thread before conversion.
//!
//! The writer thread used to turn each body's JSON text into an index
//! document and pass the document on to tantivy's indexing thread. Every
//! document was then allocated on one thread and freed on the other (fresh
//! allocator pages, page faults) and read there cold from cache. A
//! [`PendingDoc`] carries the text instead: the conversion runs on first
//! use inside the indexing thread, which indexes the document while it is
//! hot and frees it where it was allocated.
//!
//! A text that turns out not to be JSON cannot be left out any more (it is
//! already in tantivy's queue): it becomes a document holding only the
//! [`REJECTED`] marker in `_exists`, which the writer deletes before every
//! commit, so no commit ever shows it. It is counted in the shared counter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tantivy::TantivyDocument;
use tantivy::schema::document::Document;

use crate::schema::StoreSchema;

/// The `_exists` term of a body that was not JSON (registry paths never
/// start with `_`, so it names no field).
pub(crate) const REJECTED: &str = "_rejected";

/// A document for the index: ready, or a JSON text converted on first use.
pub(crate) struct PendingDoc {
    text: String,
    schema: Option<Arc<StoreSchema>>,
    rejected: Option<Arc<AtomicU64>>,
    doc: OnceLock<TantivyDocument>,
}

impl PendingDoc {
    /// A document converted already.
    pub(crate) fn ready(doc: TantivyDocument) -> PendingDoc {
        PendingDoc {
            text: String::new(),
            schema: None,
            rejected: None,
            doc: OnceLock::from(doc),
        }
    }

    /// A body's JSON text, converted by [`StoreSchema::json_to_document`]
    /// when tantivy first reads the document; a text that is not JSON
    /// counts in `rejected`.
    pub(crate) fn json(
        text: String,
        schema: Arc<StoreSchema>,
        rejected: Arc<AtomicU64>,
    ) -> PendingDoc {
        PendingDoc {
            text,
            schema: Some(schema),
            rejected: Some(rejected),
            doc: OnceLock::new(),
        }
    }

    fn doc(&self) -> &TantivyDocument {
        self.doc.get_or_init(|| {
            let Some(schema) = &self.schema else {
                return TantivyDocument::new();
            };
            match schema.json_to_document(&self.text) {
                Ok(d) => d,
                Err(_) => {
                    if let Some(r) = &self.rejected {
                        r.fetch_add(1, Ordering::Relaxed);
                    }
                    let mut d = TantivyDocument::new();
                    d.add_text(schema.exists_field(), REJECTED);
                    d
                }
            }
        })
    }
}

impl Document for PendingDoc {
    type Value<'a> = <TantivyDocument as Document>::Value<'a>;
    type FieldsValuesIter<'a> = <TantivyDocument as Document>::FieldsValuesIter<'a>;

    fn iter_fields_and_values(&self) -> Self::FieldsValuesIter<'_> {
        self.doc().iter_fields_and_values()
    }
}
