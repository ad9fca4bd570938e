//! What a run does: the stack it loads, the accounts' password, and the mix of visitors
//! (goose scenario weights), shared read-only by every visitor.

use std::sync::OnceLock;

use anyhow::Context as _;

use crate::stack::Stack;

/// The visitor kinds, by their scenario names.
pub const KINDS: [&str; 5] = ["scraper", "person", "returning", "storm", "stuffer"];

/// How many visitors of each kind, relative to each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    /// `(kind, weight)` in the order of [`KINDS`].
    pub weights: Vec<(&'static str, usize)>,
}

impl Default for Mix {
    /// Per 20 visitors: 12 scrapers, who ask without pause, and 8 who stop to read, so
    /// scrapers make nearly all of the login's page views, as in the traffic Tessera
    /// was built for.
    fn default() -> Self {
        Mix {
            weights: vec![
                ("scraper", 12),
                ("person", 3),
                ("returning", 2),
                ("storm", 1),
                ("stuffer", 2),
            ],
        }
    }
}

impl Mix {
    /// Parses `scraper=12,person=3,…`; kinds not named keep their default weight.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut mix = Mix::default();
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (kind, weight) = part.split_once('=').with_context(|| {
                format!(
                    "--mix: {part:?} is not kind=weight (kinds: {})",
                    KINDS.join(", ")
                )
            })?;
            let weight: usize = weight
                .trim()
                .parse()
                .with_context(|| format!("--mix: the weight of {kind} is not a whole number"))?;
            let slot = mix
                .weights
                .iter_mut()
                .find(|(k, _)| *k == kind.trim())
                .with_context(|| {
                    format!(
                        "--mix: no visitor kind {kind:?} (kinds: {})",
                        KINDS.join(", ")
                    )
                })?;
            slot.1 = weight;
        }
        anyhow::ensure!(
            mix.total() > 0,
            "--mix: every weight is 0; a run needs some visitors"
        );
        Ok(mix)
    }

    /// The weight of `kind`.
    pub fn weight(&self, kind: &str) -> usize {
        self.weights
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, w)| *w)
            .unwrap_or_default()
    }

    /// All weights together: the visitors one full round of the mix needs.
    pub fn total(&self) -> usize {
        self.weights.iter().map(|(_, w)| w).sum()
    }
}

/// The run's settings.
#[derive(Debug)]
pub struct Plan {
    /// The stack under load.
    pub stack: Stack,
    /// The accounts' password.
    pub password: String,
    /// The CA of the stack's public fronts, when it has its own.
    pub ca: Option<reqwest::Certificate>,
    /// The visitor mix.
    pub mix: Mix,
}

static PLAN: OnceLock<Plan> = OnceLock::new();

impl Plan {
    /// Sets the run's plan, once.
    pub fn install(plan: Plan) -> anyhow::Result<()> {
        PLAN.set(plan)
            .map_err(|_| anyhow::anyhow!("the run's plan was set twice"))
    }

    /// The run's plan.
    ///
    /// # Panics
    /// Before [`Plan::install`]: visitors start only after it.
    #[allow(clippy::expect_used)]
    pub fn get() -> &'static Plan {
        PLAN.get()
            .expect("visitors start after the plan is installed")
    }

    /// Reads the CA file the stack names.
    pub fn load_ca(stack: &Stack) -> anyhow::Result<Option<reqwest::Certificate>> {
        let Some(path) = &stack.ca_file else {
            return Ok(None);
        };
        let pem = std::fs::read(path)
            .with_context(|| format!("reading the fronts' CA {}", path.display()))?;
        Ok(Some(reqwest::Certificate::from_pem(&pem).with_context(
            || format!("{} holds no PEM certificate", path.display()),
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_names_kinds_and_keeps_the_defaults_of_the_rest() {
        let mix = Mix::parse("scraper=99, person=1").expect("a mix");
        assert_eq!(mix.weight("scraper"), 99);
        assert_eq!(mix.weight("person"), 1);
        assert_eq!(mix.weight("stuffer"), Mix::default().weight("stuffer"));
    }

    #[test]
    fn a_mix_refuses_unknown_kinds_bad_weights_and_no_visitors() {
        assert!(Mix::parse("robot=3").is_err());
        assert!(Mix::parse("person=many").is_err());
        assert!(Mix::parse("person").is_err());
        assert!(Mix::parse("scraper=0,person=0,returning=0,storm=0,stuffer=0").is_err());
        assert!(Mix::parse("scraper=0").is_ok(), "people without scrapers");
    }
}
