//! The request as template variables: `id`, `clientId`, `contact`, `data`.
//!
//! One object over the parsed request, not a map of values built per
//! request: minijinja asks it for a variable by name, and gets values made
//! on that first ask (`contact`'s, `data`'s). The templates' fast path
//! (`config::interpolation`) does not ask minijinja at all: it finds this
//! object in its context and reads a hole's field from the request itself
//! ([`RequestVars::field`]). Variables set over the request's (the calls'
//! `enrich`, a `for_each` item) are kept in the same object
//! ([`RequestVars::with`]), so the fast path still finds it.

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
    /// Variables set over the request's, the last set first: `enrich`, a
    /// `for_each` item (whose name may shadow `data` or `contact`).
    over: Vec<(String, Value)>,
}

impl RequestVars {
    /// The request as a template context.
    pub fn context(req: Arc<PlatformRequest>) -> Value {
        Value::from_object(RequestVars {
            req,
            contact: OnceLock::new(),
            over: Vec::new(),
        })
    }

    /// `ctx` with `vars` set over its variables, as `context! { name =>
    /// value, .., ..ctx }` would make it, but still a `RequestVars` when
    /// `ctx` is one (for the fast path).
    pub fn with<'n>(ctx: &Value, vars: impl IntoIterator<Item = (&'n str, Value)>) -> Value {
        let Some(under) = ctx.downcast_object_ref::<RequestVars>() else {
            return minijinja::context! { ..Value::from_pairs(vars), ..ctx.clone() };
        };
        let mut over: Vec<(String, Value)> =
            vars.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
        for (name, value) in &under.over {
            if !over.iter().any(|(n, _)| n == name) {
                over.push((name.clone(), value.clone()));
            }
        }
        Value::from_object(RequestVars {
            req: under.req.clone(),
            contact: under.contact.clone(),
            over,
        })
    }

    /// `a.b.c` read from the request, where this object can give it
    /// without minijinja; `None` leaves the lookup to minijinja (an
    /// undefined name, a path into a text). A variable set over the
    /// request's is looked up in its value, as minijinja would.
    pub fn field(&self, path: &[String]) -> Option<Field<'_>> {
        let req = &*self.req;
        if let Some((_, value)) = path
            .first()
            .and_then(|first| self.over.iter().find(|(n, _)| n == first))
        {
            return walk(value.clone(), &path[1..]).map(Field::Value);
        }
        match path {
            [name] => match name.as_str() {
                "id" => Some(Field::Value(Value::from(req.id.0))),
                "clientId" => Some(Field::Value(Value::from(req.client_id.0))),
                _ => None,
            },
            [contact, field] if contact == "contact" => Some(Field::Str(match field.as_str() {
                "uid" => &req.contact.uid,
                "type" => req.contact.kind.as_str(),
                "key" => &req.contact.key,
                "name" => &req.contact.name,
                _ => return None,
            })),
            [data, key, rest @ ..] if data == "data" => {
                let found = req.data.get(key)?;
                if rest.is_empty() {
                    return Some(found);
                }
                // Inside a nested object, as minijinja would look.
                let Field::Value(value) = found else {
                    return None;
                };
                walk(value, rest).map(Field::Value)
            }
            _ => None,
        }
    }
}

/// `value.a.b…` along `path` as a template looks it up: `None` where a
/// step is undefined or fails (minijinja's business then).
pub fn walk(mut value: Value, path: &[String]) -> Option<Value> {
    for part in path {
        if value.is_undefined() {
            return None;
        }
        value = value.get_attr(part).ok()?;
    }
    (!value.is_undefined()).then_some(value)
}

impl Object for RequestVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    // What `a.b` in a template calls: no key value is built per lookup.
    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        if let Some((_, value)) = self.over.iter().find(|(n, _)| n == key) {
            return Some(value.clone());
        }
        Some(match key {
            "id" => Value::from(self.req.id.0),
            "clientId" => Value::from(self.req.client_id.0),
            "contact" => self
                .contact
                .get_or_init(|| {
                    let c = &self.req.contact;
                    Value::from_object(ContactVars {
                        kind: c.kind.as_str(),
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
        const OWN: [&str; 4] = ["id", "clientId", "contact", "data"];
        if self.over.is_empty() {
            return Enumerator::Str(&OWN);
        }
        let mut names: Vec<Value> = self
            .over
            .iter()
            .map(|(n, _)| Value::from(n.as_str()))
            .collect();
        names.extend(
            OWN.iter()
                .filter(|o| !self.over.iter().any(|(n, _)| n == *o))
                .map(|&o| Value::from(o)),
        );
        Enumerator::Values(names)
    }
}

#[derive(Debug)]
struct ContactVars {
    kind: &'static str,
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
            "type" => Value::from(self.kind),
            "key" => self.key.clone(),
            "name" => self.name.clone(),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["uid", "type", "key", "name"])
    }
}
