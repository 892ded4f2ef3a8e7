//! Filters a Brazilian operator needs that minijinja and minijinja-contrib do
//! not have, and contrib's date filters redone in Portuguese. Every filter
//! either prints text that is right for a customer or fails with an error
//! naming itself: never an empty name, a wrong amount or an English month.
//!
//! - `brl`, `number_br` in [`money`];
//! - `dateformat`, `datetimeformat`, `timeformat` in [`dates`], whose
//!   default formats recado sets to `dd/mm/yyyy` (see
//!   [`crate::config::compile`]);
//! - `first_name` in [`names`];
//! - `phone_br` in [`phones`].

use minijinja::Environment;

mod dates;
mod money;
mod names;
mod phones;

pub use dates::{
    dateformat, datetimeformat, iso_date_in_default_format, iso_date_in_default_format_into,
    timeformat, DEFAULT_DATE_FORMAT,
};
pub use money::{brl, brl_into, number_br};
pub use names::{first_name, first_name_filter, first_name_into};
pub use phones::phone_br;

/// Registered after minijinja-contrib's filters, so the date filters here
/// replace contrib's.
pub fn register(env: &mut Environment<'_>) {
    env.add_filter("dateformat", dateformat);
    env.add_filter("datetimeformat", datetimeformat);
    env.add_filter("timeformat", timeformat);
    env.add_filter("brl", brl);
    env.add_filter("number_br", number_br);
    env.add_filter("first_name", first_name_filter);
    env.add_filter("phone_br", phone_br);
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::Environment;

    #[test]
    fn dateformat_fast_path_agrees_with_contrib() {
        let env = crate::config::compile::environment(&crate::config::compile::CompileOptions {
            timezone: "America/Sao_Paulo".into(),
            fuel: 10_000,
        });
        let mut contrib = Environment::new();
        minijinja_contrib::add_to_environment(&mut contrib);
        contrib.add_global("DATE_FORMAT", DEFAULT_DATE_FORMAT);
        contrib.add_global("TIMEZONE", "America/Sao_Paulo");
        // recado's error adds what a date filter reads; contrib's words stay.
        let render = |env: &Environment, tpl: &str, v: &str| {
            env.render_str(tpl, minijinja::context! { v => v })
                .map_err(|e| e.to_string().replace(dates::WHAT_A_DATE_IS, ""))
        };
        for v in [
            "2026-12-10",
            "2024-02-29",
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "0999-01-01",
            "2026-1-10",
            "2026-12-10T10:00:00-03:00",
            "2026-12-10 10:00",
            "10/12/2026",
            "",
        ] {
            for tpl in ["{{ v | dateformat }}", "{{ v | dateformat(format='%Y') }}"] {
                assert_eq!(
                    render(&env, tpl, v),
                    render(&contrib, tpl, v),
                    "{tpl} on {v:?}"
                );
            }
        }
        assert_eq!(
            render(&env, "{{ v | dateformat }}", "2026-12-10").unwrap(),
            "10/12/2026"
        );
        let other = "{% set DATE_FORMAT = '%Y' %}{{ v | dateformat }}";
        assert_eq!(render(&env, other, "2026-12-10").unwrap(), "2026");
    }

    #[test]
    fn dates_in_portuguese() {
        let env = crate::config::compile::environment(&crate::config::compile::CompileOptions {
            timezone: "America/Sao_Paulo".into(),
            fuel: 10_000,
        });
        let r = |tpl: &str| {
            env.render_str(
                tpl,
                minijinja::context! { d => "2026-12-10", t => "2026-03-01T13:05:00Z" },
            )
            .unwrap()
        };
        assert_eq!(r("{{ d | dateformat }}"), "10/12/2026");
        assert_eq!(
            r("{{ d | dateformat(format='long') }}"),
            "10 de dezembro de 2026"
        );
        assert_eq!(
            r("{{ d | dateformat(format='full') }}"),
            "quinta-feira, 10 de dezembro de 2026"
        );
        assert_eq!(
            r("{{ d | dateformat(format='%a %d %b %h') }}"),
            "qui 10 dez dez"
        );
        assert_eq!(
            r("{{ d | dateformat(format='100%% %B') }}"),
            "100% dezembro"
        );
        assert_eq!(r("{{ t | datetimeformat }}"), "01/03/2026 10:05");
        assert_eq!(
            r("{{ t | datetimeformat(format='full') }}"),
            "domingo, 1 de março de 2026 10:05:00"
        );
        assert_eq!(
            r("{{ t | datetimeformat(format='%A %H:%M', tz='UTC') }}"),
            "domingo 13:05"
        );
        assert_eq!(
            r("{{ t | dateformat(format='%a', tz='Asia/Tokyo') }}"),
            "dom"
        );
        let err = env.render_str(
            "{{ d | dateformat(colour='red') }}",
            minijinja::context! { d => "2026-12-10" },
        );
        assert!(err.is_err());
    }
}
