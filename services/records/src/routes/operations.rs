//! Every `$` path this service routes, in one table: [`super::configure`] registers them from
//! it and the CapabilityStatement (`metadata.rs`) lists the operations from it, so the
//! statement can neither claim an operation that is not served nor leave out one that is.

use actix_web::web;

use super::{erase, everything, export, meta, validate};

/// The Bulk Data parameters every `$export` takes (Bulk Data Access IG v2).
pub const EXPORT_PARAMETERS: &str = "Bulk Data $export (Prefer: respond-async), GET or POST (Parameters): _type, _since, _typeFilter (search parameters of the type, not result parameters), _outputFormat (application/fhir+ndjson only), _elements (element or Type.element; mandatory elements kept, meta.tag SUBSETTED); includeAssociatedData: no value is supported (400 under Prefer: handling=strict, otherwise ignored and reported in the manifest's error file, as are other unknown parameters); the manifest and its files carry Expires, after which they answer 404 and are deleted";

/// An HTTP method a path serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Delete => "DELETE",
        }
    }

    fn route(self) -> actix_web::Route {
        match self {
            Verb::Get => web::get(),
            Verb::Post => web::post(),
            Verb::Delete => web::delete(),
        }
    }
}

/// One method of a path, and its handler.
pub struct Handler {
    pub verb: Verb,
    to: fn(actix_web::Route) -> actix_web::Route,
}

/// A routed path and what it serves.
pub struct Path {
    /// As actix-web matches it (`{type}`, `{id}`, `{vid}`, `{job}`, `{part}` segments).
    pub path: &'static str,
    pub handlers: &'static [Handler],
}

/// Where the CapabilityStatement lists an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    /// `rest.operation`: the system level, or every type alike.
    Rest,
    /// `rest.resource.operation` of every resource type.
    EveryType,
    /// `rest.resource.operation` of these types.
    Types(&'static [&'static str]),
    /// Not an operation of its own; why.
    Not(&'static str),
}

/// A `$` path group: an operation (or an endpoint that is not one).
pub struct Operation {
    /// `$`-less, as the CapabilityStatement names it.
    pub name: &'static str,
    pub listed: Listed,
    pub definition: &'static str,
    /// Joined into `documentation` (none when empty).
    pub documentation: &'static [&'static str],
    pub paths: &'static [Path],
}

impl Operation {
    pub fn documentation(&self) -> Option<String> {
        (!self.documentation.is_empty()).then(|| self.documentation.concat())
    }
}

const fn get(to: fn(actix_web::Route) -> actix_web::Route) -> Handler {
    Handler {
        verb: Verb::Get,
        to,
    }
}

const fn post(to: fn(actix_web::Route) -> actix_web::Route) -> Handler {
    Handler {
        verb: Verb::Post,
        to,
    }
}

const fn delete(to: fn(actix_web::Route) -> actix_web::Route) -> Handler {
    Handler {
        verb: Verb::Delete,
        to,
    }
}

/// In registration order: ahead of the generic `/fhir/{type}/...` routes, whose segments would
/// also match a `$name`.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        name: "validate",
        listed: Listed::Rest,
        definition: "http://hl7.org/fhir/OperationDefinition/Resource-validate",
        documentation: &[],
        paths: &[Path {
            path: "/fhir/{type}/$validate",
            handlers: &[post(|r| r.to(validate::validate))],
        }],
    },
    Operation {
        name: "export",
        listed: Listed::Rest,
        definition: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
        documentation: &[EXPORT_PARAMETERS, "; patient is refused at this level"],
        paths: &[Path {
            path: "/fhir/$export",
            handlers: &[
                get(|r| r.to(export::system)),
                post(|r| r.to(export::system_post)),
            ],
        }],
    },
    Operation {
        name: "export",
        listed: Listed::Types(&["Patient"]),
        definition: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
        documentation: &[
            EXPORT_PARAMETERS,
            "; patient (Patient/<id>, valueReference in a POST): only those patients, each one \
             the caller may see (404 otherwise, as for an unknown one)",
        ],
        paths: &[Path {
            path: "/fhir/Patient/$export",
            handlers: &[
                get(|r| r.to(export::patients)),
                post(|r| r.to(export::patients_post)),
            ],
        }],
    },
    Operation {
        name: "export",
        listed: Listed::Types(&["Group"]),
        definition: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
        documentation: &[
            EXPORT_PARAMETERS,
            "; patient (Patient/<id>, valueReference in a POST): only those members, each one \
             the caller may see (404 otherwise, as for an unknown one)",
        ],
        paths: &[Path {
            path: "/fhir/Group/{id}/$export",
            handlers: &[
                get(|r| r.to(export::group)),
                post(|r| r.to(export::group_post)),
            ],
        }],
    },
    Operation {
        name: "export-status",
        listed: Listed::Not("the Bulk Data status endpoint an $export answers with"),
        definition: "",
        documentation: &[],
        paths: &[Path {
            path: "/fhir/$export-status/{job}",
            handlers: &[
                get(|r| r.to(export::status)),
                delete(|r| r.to(export::delete)),
            ],
        }],
    },
    Operation {
        name: "export-file",
        listed: Listed::Not("the files of a finished $export, named by its manifest"),
        definition: "",
        documentation: &[],
        paths: &[Path {
            path: "/fhir/$export-file/{job}/{part}",
            handlers: &[get(|r| r.to(export::file))],
        }],
    },
    Operation {
        name: "everything",
        listed: Listed::Types(&["Patient"]),
        definition: "http://hl7.org/fhir/OperationDefinition/Patient-everything",
        documentation: &[
            "Patient/[id]/$everything (GET or POST) and Patient/$everything (GET, \
             every patient the caller may see); _since, _type, start, end (care dates: the date \
             parameter) and _count, paged by cursor",
        ],
        paths: &[
            Path {
                path: "/fhir/Patient/$everything",
                handlers: &[get(|r| r.to(everything::everything_all))],
            },
            Path {
                path: "/fhir/Patient/{id}/$everything",
                handlers: &[
                    get(|r| r.to(everything::everything)),
                    post(|r| r.to(everything::everything_post)),
                ],
            },
        ],
    },
    Operation {
        name: "erase",
        listed: Listed::Types(&["Patient"]),
        definition: erase::DEFINITION,
        documentation: &[
            "The patient's right to erasure (GDPR art. 17), by her or an \
             administrator: POST without confirm answers what would be erased and a \
             confirmation code; POST with confirm=<code> destroys her record's key and deletes \
             her resources",
        ],
        paths: &[Path {
            path: "/fhir/Patient/{id}/$erase",
            handlers: &[post(|r| r.to(erase::erase))],
        }],
    },
    Operation {
        name: "meta",
        listed: Listed::Not(
            "$meta at the system and type levels (what is in use across resources) answers a \
             405 that says so",
        ),
        definition: "",
        documentation: &[],
        paths: &[
            Path {
                path: "/fhir/$meta",
                handlers: &[get(|r| r.to(meta::meta_in_use))],
            },
            Path {
                path: "/fhir/{type}/$meta",
                handlers: &[get(|r| r.to(meta::meta_in_use))],
            },
        ],
    },
    Operation {
        name: "meta",
        listed: Listed::EveryType,
        definition: "http://hl7.org/fhir/OperationDefinition/Resource-meta",
        documentation: &[],
        paths: &[
            Path {
                path: "/fhir/{type}/{id}/$meta",
                handlers: &[get(|r| r.to(meta::meta))],
            },
            Path {
                path: "/fhir/{type}/{id}/_history/{vid}/$meta",
                handlers: &[get(|r| r.to(meta::version_meta))],
            },
        ],
    },
    Operation {
        name: "meta-add",
        listed: Listed::EveryType,
        definition: "http://hl7.org/fhir/OperationDefinition/Resource-meta-add",
        documentation: &[],
        paths: &[Path {
            path: "/fhir/{type}/{id}/$meta-add",
            handlers: &[post(|r| r.to(meta::meta_add))],
        }],
    },
    Operation {
        name: "meta-delete",
        listed: Listed::EveryType,
        definition: "http://hl7.org/fhir/OperationDefinition/Resource-meta-delete",
        documentation: &[],
        paths: &[Path {
            path: "/fhir/{type}/{id}/$meta-delete",
            handlers: &[post(|r| r.to(meta::meta_delete))],
        }],
    },
];

/// Registers every path of [`OPERATIONS`], each answering 405 (an `OperationOutcome`) to the
/// methods it does not serve.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for operation in OPERATIONS {
        for path in operation.paths {
            let mut resource = super::resource(path.path);
            for handler in path.handlers {
                resource = resource.route((handler.to)(handler.verb.route()));
            }
            cfg.service(resource);
        }
    }
}

/// The operations listed under resource type `resource_type`.
pub fn of_type(resource_type: &str) -> impl Iterator<Item = &'static Operation> + '_ {
    OPERATIONS.iter().filter(move |o| match o.listed {
        Listed::EveryType => true,
        Listed::Types(types) => types.contains(&resource_type),
        Listed::Rest | Listed::Not(_) => false,
    })
}

/// The operations listed at the `rest` level.
pub fn of_rest() -> impl Iterator<Item = &'static Operation> {
    OPERATIONS
        .iter()
        .filter(|o| matches!(o.listed, Listed::Rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_an_operation_path_once() {
        let mut seen = std::collections::HashSet::new();
        for o in OPERATIONS {
            assert!(!o.paths.is_empty(), "{}", o.name);
            for p in o.paths {
                assert!(p.path.contains(&format!("${}", o.name)), "{}", p.path);
                assert!(seen.insert(p.path), "{} twice", p.path);
                assert!(!p.handlers.is_empty(), "{}", p.path);
            }
            let listed = !matches!(o.listed, Listed::Not(_));
            assert_eq!(listed, !o.definition.is_empty(), "{}", o.name);
        }
    }
}
