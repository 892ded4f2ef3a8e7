//! The request as template variables: `id`, `clientId`, `contact`, `data`.
//!
//! One object over the parsed request, not a map of values built per
//! request: minijinja asks it for a variable by name, and gets values made
//! on that first ask (`contact`'s, `data`'s). The templates' fast path
//! (`config::interpolation`) does not ask minijinja at all: it finds this
//! object in its context and reads a hole's field from the request itself
//! ([`RequestVars::field`]).

use std::sync::{Arc, OnceLock};

use minijinja::value::{Enumerator, Object};
use minijinja::Value;

use super::payload::Field;
use super::PlatformRequest;

/// The variables every template sees.
#[derive(Debug)]
pub struct RequestVars {
    req: Arc<PlatformRequest>,
    contact: OnceLock<Value>,
}

impl RequestVars {
    /// The request as a template context.
    pub fn context(req: Arc<PlatformRequest>) -> Value {
        Value::from_object(RequestVars {
            req,
            contact: OnceLock::new(),
        })
    }

    /// The request these variables show.
    pub fn request(&self) -> &PlatformRequest {
        &self.req
    }

    /// `a.b.c` read from the request, where it is a plain value this object
    /// can give without minijinja; `None` leaves the lookup to minijinja
    /// (an undefined name, an object to print, a path into a text).
    pub fn field(&self, path: &[String]) -> Option<Field<'_>> {
        let req = &*self.req;
        match path {
            [name] => match name.as_str() {
                "id" => Some(Field::Value(Value::from(req.id.0))),
                "clientId" => Some(Field::Value(Value::from(req.client_id.0))),
                _ => None,
            },
            [contact, field] if contact == "contact" => Some(Field::Str(match field.as_str() {
                "uid" => &req.contact.uid,
                "type" => "WHATSAPP",
                "key" => &req.contact.key,
                "name" => &req.contact.name,
                _ => return None,
            })),
            [data, key, rest @ ..] if data == "data" => {
                let found = req.data.get(key)?;
                let Some((last, inner)) = rest.split_last() else {
                    return Some(found);
                };
                // Inside a nested object, as minijinja would look.
                let Field::Value(mut value) = found else {
                    return None;
                };
                for part in inner {
                    value = value.get_attr(part).ok()?;
                    if value.is_undefined() {
                        return None;
                    }
                }
                let value = value.get_attr(last).ok()?;
                (!value.is_undefined()).then_some(Field::Value(value))
            }
            _ => None,
        }
    }
}

impl Object for RequestVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    // What `a.b` in a template calls: no key value is built per lookup.
    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        Some(match key {
            "id" => Value::from(self.req.id.0),
            "clientId" => Value::from(self.req.client_id.0),
            "contact" => self
                .contact
                .get_or_init(|| {
                    let c = &self.req.contact;
                    Value::from_object(ContactVars {
                        uid: Value::from(c.uid.as_str()),
                        key: Value::from(c.key.as_str()),
                        name: Value::from(c.name.as_str()),
                    })
                })
                .clone(),
            // An absent payload reads as an empty mapping, so `data.x is
            // defined` works and printing `data.x` still fails as undefined.
            "data" => self.req.data.value(),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["id", "clientId", "contact", "data"])
    }
}

#[derive(Debug)]
struct ContactVars {
    uid: Value,
    key: Value,
    name: Value,
}

impl Object for ContactVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        Some(match key {
            "uid" => self.uid.clone(),
            // The platform's only channel for now (the request was validated).
            "type" => Value::from("WHATSAPP"),
            "key" => self.key.clone(),
            "name" => self.name.clone(),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["uid", "type", "key", "name"])
    }
}
