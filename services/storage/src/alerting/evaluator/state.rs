//! What the evaluator asks of a rule's state and condition: whether a change of the state is
//! worth storing, and whether the condition watches for silence.

use crate::{
    alerting::domain::{alert_eval::RuleState, alert_rule::Condition},
    micros::Micros,
};

/// What is persisted of a state changes: firing, or a "for" timer.
pub(super) fn persisted_view(state: &RuleState) -> (bool, Vec<(bool, Option<Micros>)>) {
    (
        state.active,
        state
            .branches
            .iter()
            .map(|b| (b.active, b.pending_since))
            .collect(),
    )
}

pub(super) fn has_no_data(condition: &Condition) -> bool {
    condition
        .branches()
        .iter()
        .any(|c| matches!(c, Condition::NoData { .. }))
}
