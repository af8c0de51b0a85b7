//! The classes an explanation sums, resolved against the model's head and labels: one class
//! most of the time, several for `281+282` (the probability of "tabby or tiger cat" is the
//! sum of theirs, and so is the logit explained).

use candle_core::{Device, Tensor};
use convlens_shared::target::{ClassRef, TargetSpec};

use crate::{Error, Result};

/// The class indices of `spec` for a head of `classes` outputs labelled `labels`. A label must
/// match one class exactly (case ignored); an index must be in the head; no class twice.
pub(crate) fn resolve(spec: &TargetSpec, labels: &[String], classes: usize) -> Result<Vec<usize>> {
    if spec.classes.is_empty() {
        return Err(Error::InvalidArgument("the target names no class".into()));
    }
    let resolved = spec
        .classes
        .iter()
        .map(|class| match class {
            ClassRef::Index(i) => Ok(*i),
            ClassRef::Label(label) => by_label(label, labels),
        })
        .collect::<Result<Vec<usize>>>()?;
    check_classes(&resolved, classes)?;
    if let Some(twice) = resolved
        .iter()
        .enumerate()
        .find(|(i, c)| resolved[..*i].contains(c))
        .map(|(_, c)| c)
    {
        return Err(Error::InvalidArgument(format!(
            "class {twice} is named twice in the target `{spec}`"
        )));
    }
    Ok(resolved)
}

/// The one class labelled `label` (case ignored).
fn by_label(label: &str, labels: &[String]) -> Result<usize> {
    let matches: Vec<usize> = labels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.eq_ignore_ascii_case(label))
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] if labels.is_empty() => Err(Error::InvalidArgument(format!(
            "the model has no class labels, so `{label}` names no class; give its index"
        ))),
        [] => {
            let close: Vec<&str> = labels
                .iter()
                .filter(|l| strsim::jaro_winkler(&l.to_lowercase(), &label.to_lowercase()) > 0.85)
                .map(String::as_str)
                .take(3)
                .collect();
            let hint = if close.is_empty() {
                String::new()
            } else {
                format!("; did you mean {}?", close.join(", "))
            };
            Err(Error::InvalidArgument(format!(
                "no class is labelled `{label}`{hint}"
            )))
        }
        several => Err(Error::InvalidArgument(format!(
            "`{label}` labels several classes ({}); give the index",
            several
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Refuses an empty target or a class beyond a head of `outputs` classes.
pub(crate) fn check_classes(classes: &[usize], outputs: usize) -> Result<()> {
    if classes.is_empty() {
        return Err(Error::InvalidArgument("the target names no class".into()));
    }
    match classes.iter().find(|&&c| c >= outputs) {
        Some(c) => Err(Error::InvalidArgument(format!(
            "class {c} is out of range: the model has {outputs} classes (0..={})",
            outputs.saturating_sub(1)
        ))),
        None => Ok(()),
    }
}

/// A signal [n, classes] with a one at each of `targets` in every row.
pub(crate) fn multi_hot(
    n: usize,
    classes: usize,
    targets: &[usize],
    device: &Device,
) -> Result<Tensor> {
    let mut v = vec![0f32; n * classes];
    for row in 0..n {
        for &t in targets {
            if let Some(x) = v.get_mut(row * classes + t) {
                *x = 1.0;
            }
        }
    }
    Ok(Tensor::from_vec(v, (n, classes), device)?)
}

/// The sum of the `targets` columns of `logits` [n, classes]: [n].
pub(crate) fn summed_scores(logits: &Tensor, targets: &[usize]) -> Result<Tensor> {
    let index: Vec<u32> = targets.iter().map(|&t| t as u32).collect();
    let index = Tensor::from_vec(index, targets.len(), logits.device())?;
    Ok(logits.index_select(&index, 1)?.sum(1)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["tabby", "tiger cat", "crane", "crane"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn targets_resolve_by_index_and_label_or_say_why_not() {
        let spec = |t: &str| t.parse::<TargetSpec>().unwrap();
        assert_eq!(resolve(&spec("1+Tabby"), &labels(), 4).unwrap(), vec![1, 0]);
        for (target, needle) in [
            ("4", "class 4 is out of range"),
            ("tabbyy", "did you mean tabby?"),
            ("crane", "several classes (2, 3)"),
            ("0+tabby", "named twice"),
        ] {
            let error = resolve(&spec(target), &labels(), 4)
                .unwrap_err()
                .to_string();
            assert!(error.contains(needle), "{target}: {error}");
        }
        let none = resolve(&spec("tabby"), &[], 4).unwrap_err().to_string();
        assert!(none.contains("no class labels"), "{none}");
    }

    #[test]
    fn summed_scores_add_the_chosen_columns() {
        let logits = Tensor::new(&[[1f32, 2., 4.], [8., 16., 32.]], &Device::Cpu).unwrap();
        let s = summed_scores(&logits, &[0, 2])
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(s, vec![5.0, 40.0]);
        let m = multi_hot(1, 3, &[0, 2], &Device::Cpu).unwrap();
        assert_eq!(m.to_vec2::<f32>().unwrap(), vec![vec![1.0, 0.0, 1.0]]);
    }
}
