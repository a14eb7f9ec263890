//! [`TreeEnsemble`]: the ONNX-ML `TreeEnsembleRegressor` and `TreeEnsembleClassifier`
//! operators (domain `ai.onnx.ml`), evaluated natively from the node's attributes as the
//! operators' specification (and ONNX Runtime, for the binary classifier) define them.

use std::collections::HashMap;

use tract_onnx::pb;

/// How a branch node compares the feature value `x` with its threshold `t`; true takes the
/// node's "true" child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

impl Mode {
    fn parse(text: &[u8]) -> Result<Mode, String> {
        Ok(match text {
            b"BRANCH_LEQ" => Mode::Leq,
            b"BRANCH_LT" => Mode::Lt,
            b"BRANCH_GTE" => Mode::Gte,
            b"BRANCH_GT" => Mode::Gt,
            b"BRANCH_EQ" => Mode::Eq,
            b"BRANCH_NEQ" => Mode::Neq,
            b"LEAF" => Mode::Leaf,
            other => return Err(format!("unknown node mode {:?}", String::from_utf8_lossy(other))),
        })
    }
}

/// One node, children as indices into the ensemble's node list.
#[derive(Debug, Clone)]
struct Node {
    mode: Mode,
    feature: usize,
    threshold: f32,
    true_child: usize,
    false_child: usize,
    missing_tracks_true: bool,
    /// For leaves: the range of this leaf's `(target, weight)` pairs in `TreeEnsemble::weights`.
    weights: std::ops::Range<usize>,
}

/// How the trees' values are combined per target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

/// What is applied to the aggregated values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PostTransform {
    None,
    Logistic,
}

/// What the ensemble predicts.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// One value per target.
    Regressor,
    /// Scores per class label. `binary_single`: two labels and leaf weights for one class id
    /// only, the score of the second label (ONNX Runtime's binary case: `[1 - s, s]`).
    Classifier { labels: Vec<i64>, binary_single: bool },
}

/// A tree ensemble read from an ONNX-ML `TreeEnsembleRegressor` or `TreeEnsembleClassifier`
/// node.
#[derive(Debug, Clone)]
pub struct TreeEnsemble {
    kind: Kind,
    nodes: Vec<Node>,
    roots: Vec<usize>,
    weights: Vec<(usize, f32)>,
    n_targets: usize,
    base_values: Vec<f32>,
    aggregate: Aggregate,
    post_transform: PostTransform,
    n_features: usize,
}

fn attribute<'a>(node: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    node.attribute.iter().find(|attribute| attribute.name == name)
}

fn ints<'a>(node: &'a pb::NodeProto, name: &str) -> Result<&'a [i64], String> {
    attribute(node, name)
        .map(|attribute| attribute.ints.as_slice())
        .ok_or_else(|| format!("attribute {name} is missing"))
}

fn floats(node: &pb::NodeProto, name: &str, tensor_name: &str) -> Result<Vec<f32>, String> {
    if let Some(attribute) = attribute(node, name) {
        return Ok(attribute.floats.clone());
    }
    // Opset 3 may carry the values as a tensor instead (float or double).
    let tensor = attribute(node, tensor_name)
        .and_then(|attribute| attribute.t.as_ref())
        .ok_or_else(|| format!("attribute {name} (or {tensor_name}) is missing"))?;
    if !tensor.float_data.is_empty() {
        Ok(tensor.float_data.clone())
    } else if !tensor.double_data.is_empty() {
        Ok(tensor.double_data.iter().map(|&value| value as f32).collect())
    } else {
        Err(format!("attribute {tensor_name} holds no float or double data"))
    }
}

fn index(value: i64, what: &str) -> Result<usize, String> {
    usize::try_from(value).map_err(|_| format!("{what} {value} is negative"))
}

impl TreeEnsemble {
    /// Reads the ensemble from a `TreeEnsembleRegressor` or `TreeEnsembleClassifier` node's
    /// attributes, checking that every child and leaf refers to a node of its tree.
    pub fn from_node(node: &pb::NodeProto) -> Result<TreeEnsemble, String> {
        let classifier = match node.op_type.as_str() {
            "TreeEnsembleRegressor" => false,
            "TreeEnsembleClassifier" => true,
            other => return Err(format!("node {:?} is a {other}, not a tree ensemble", node.name)),
        };
        let prefix = if classifier { "class" } else { "target" };
        let tree_ids = ints(node, "nodes_treeids")?;
        let node_ids = ints(node, "nodes_nodeids")?;
        let feature_ids = ints(node, "nodes_featureids")?;
        let true_ids = ints(node, "nodes_truenodeids")?;
        let false_ids = ints(node, "nodes_falsenodeids")?;
        let thresholds = floats(node, "nodes_values", "nodes_values_as_tensor")?;
        let modes = attribute(node, "nodes_modes")
            .map(|attribute| attribute.strings.as_slice())
            .ok_or("attribute nodes_modes is missing")?;
        let missing: &[i64] =
            attribute(node, "nodes_missing_value_tracks_true").map_or(&[], |attribute| attribute.ints.as_slice());
        let n = tree_ids.len();
        let lengths = [
            ("nodes_nodeids", node_ids.len()),
            ("nodes_featureids", feature_ids.len()),
            ("nodes_truenodeids", true_ids.len()),
            ("nodes_falsenodeids", false_ids.len()),
            ("nodes_values", thresholds.len()),
            ("nodes_modes", modes.len()),
        ];
        for (name, length) in lengths {
            if length != n {
                return Err(format!("{name} has {length} entries, nodes_treeids has {n}"));
            }
        }
        if !missing.is_empty() && missing.len() != n {
            return Err(format!(
                "nodes_missing_value_tracks_true has {} entries, nodes_treeids has {n}",
                missing.len()
            ));
        }
        // (tree, node id) -> position; each tree's root is its first node listed.
        let mut position: HashMap<(i64, i64), usize> = HashMap::with_capacity(n);
        let mut roots = Vec::new();
        for i in 0..n {
            if position.insert((tree_ids[i], node_ids[i]), i).is_some() {
                return Err(format!("tree {} lists node {} twice", tree_ids[i], node_ids[i]));
            }
            if i == 0 || tree_ids[i] != tree_ids[i - 1] {
                roots.push(i);
            }
        }
        let child = |i: usize, id: i64| {
            position
                .get(&(tree_ids[i], id))
                .copied()
                .ok_or_else(|| format!("tree {} node {} points to missing node {id}", tree_ids[i], node_ids[i]))
        };
        let mut nodes = Vec::with_capacity(n);
        let mut n_features = 0;
        for i in 0..n {
            let mode = Mode::parse(&modes[i])?;
            let (feature, true_child, false_child) = if mode == Mode::Leaf {
                (0, i, i)
            } else {
                let feature = index(feature_ids[i], "feature id")?;
                n_features = n_features.max(feature + 1);
                (feature, child(i, true_ids[i])?, child(i, false_ids[i])?)
            };
            nodes.push(Node {
                mode,
                feature,
                threshold: thresholds[i],
                true_child,
                false_child,
                missing_tracks_true: missing.get(i).is_some_and(|&flag| flag != 0),
                weights: 0..0,
            });
        }
        let target_tree_ids = ints(node, &format!("{prefix}_treeids"))?;
        let target_node_ids = ints(node, &format!("{prefix}_nodeids"))?;
        let target_ids = ints(node, &format!("{prefix}_ids"))?;
        let target_weights = floats(
            node,
            &format!("{prefix}_weights"),
            &format!("{prefix}_weights_as_tensor"),
        )?;
        let m = target_tree_ids.len();
        if target_node_ids.len() != m || target_ids.len() != m || target_weights.len() != m {
            return Err(format!("the {prefix}_* attributes differ in length"));
        }
        let (kind, n_targets) = if classifier {
            let labels = attribute(node, "classlabels_int64s")
                .map(|attribute| attribute.ints.clone())
                .filter(|labels| !labels.is_empty())
                .ok_or("only integer class labels (classlabels_int64s) are supported")?;
            let mut ids: Vec<i64> = target_ids.to_vec();
            ids.sort_unstable();
            ids.dedup();
            let binary_single = labels.len() == 2 && ids.len() == 1;
            if binary_single && target_weights.iter().any(|&weight| weight < 0.0) {
                return Err("a binary classifier with negative weights is not supported".to_owned());
            }
            let n = labels.len();
            (Kind::Classifier { labels, binary_single }, n)
        } else {
            let n_targets = attribute(node, "n_targets").map_or(1, |attribute| attribute.i);
            (Kind::Regressor, index(n_targets, "n_targets")?.max(1))
        };
        // Group the leaf weights by leaf, keeping their order.
        let mut by_leaf: Vec<Vec<(usize, f32)>> = vec![Vec::new(); n];
        for j in 0..m {
            let leaf = position
                .get(&(target_tree_ids[j], target_node_ids[j]))
                .copied()
                .ok_or_else(|| {
                    format!(
                        "a target weight points to missing node {} of tree {}",
                        target_node_ids[j], target_tree_ids[j]
                    )
                })?;
            let target = index(target_ids[j], "target id")?;
            if target >= n_targets {
                return Err(format!("target id {target} is not below n_targets {n_targets}"));
            }
            by_leaf[leaf].push((target, target_weights[j]));
        }
        let mut weights = Vec::with_capacity(m);
        for (node, leaf_weights) in nodes.iter_mut().zip(by_leaf) {
            let start = weights.len();
            weights.extend(leaf_weights);
            node.weights = start..weights.len();
        }
        let base_values = attribute(node, "base_values").map_or_else(Vec::new, |attribute| attribute.floats.clone());
        if matches!(
            kind,
            Kind::Classifier {
                binary_single: true,
                ..
            }
        ) && !base_values.is_empty()
        {
            return Err("a binary classifier with base_values is not supported".to_owned());
        }
        if !base_values.is_empty() && base_values.len() != n_targets {
            return Err(format!(
                "base_values has {} entries for {n_targets} targets",
                base_values.len()
            ));
        }
        let text = |name: &str, default: &str| {
            attribute(node, name).map_or_else(
                || default.to_owned(),
                |attribute| String::from_utf8_lossy(&attribute.s).into_owned(),
            )
        };
        let aggregate = match text("aggregate_function", "SUM").as_str() {
            "SUM" => Aggregate::Sum,
            "AVERAGE" => Aggregate::Average,
            "MIN" => Aggregate::Min,
            "MAX" => Aggregate::Max,
            other => return Err(format!("unknown aggregate_function {other:?}")),
        };
        let post_transform = match text("post_transform", "NONE").as_str() {
            "NONE" => PostTransform::None,
            "LOGISTIC" if !classifier => PostTransform::Logistic,
            other => return Err(format!("post_transform {other:?} is not supported here")),
        };
        if classifier && aggregate != Aggregate::Sum {
            return Err("a classifier must sum its trees".to_owned());
        }
        Ok(TreeEnsemble {
            kind,
            nodes,
            roots,
            weights,
            n_targets,
            base_values,
            aggregate,
            post_transform,
            n_features,
        })
    }

    /// The number of trees.
    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// The smallest input width the trees can read (largest feature id + 1).
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The leaf that `row` reaches in the tree rooted at `root`. A NaN feature takes the true
    /// child where the node's `missing_value_tracks_true` is set, else the comparison decides
    /// (false for every mode but NEQ).
    fn leaf(&self, root: usize, row: &[f32]) -> &Node {
        let mut node = &self.nodes[root];
        loop {
            if node.mode == Mode::Leaf {
                return node;
            }
            let x = row.get(node.feature).copied().unwrap_or(f32::NAN);
            let t = node.threshold;
            let go_true = if x.is_nan() && node.missing_tracks_true {
                true
            } else {
                match node.mode {
                    Mode::Leq => x <= t,
                    Mode::Lt => x < t,
                    Mode::Gte => x >= t,
                    Mode::Gt => x > t,
                    Mode::Eq => x == t,
                    Mode::Neq => x != t,
                    Mode::Leaf => return node,
                }
            };
            node = &self.nodes[if go_true { node.true_child } else { node.false_child }];
        }
    }

    /// Whether the ensemble is a classifier.
    pub fn is_classifier(&self) -> bool {
        matches!(self.kind, Kind::Classifier { .. })
    }

    /// For a classifier: the label of the highest score (the first on ties), and the scores
    /// per label. For a regressor: `None`.
    pub fn classify(&self, row: &[f32]) -> Option<(i64, Vec<f32>)> {
        let Kind::Classifier { labels, binary_single } = &self.kind else {
            return None;
        };
        let sums = self.predict(row);
        let scores = if *binary_single {
            let positive = sums.first().copied().unwrap_or(0.0);
            vec![1.0 - positive, positive]
        } else {
            sums
        };
        let best = (0..scores.len()).fold(0, |best, i| if scores[i] > scores[best] { i } else { best });
        Some((labels.get(best).copied().unwrap_or_default(), scores))
    }

    /// The ensemble's sums for one row: one value per target (or class id).
    pub fn predict(&self, row: &[f32]) -> Vec<f32> {
        let initial = match self.aggregate {
            Aggregate::Sum | Aggregate::Average => 0.0,
            Aggregate::Min => f64::INFINITY,
            Aggregate::Max => f64::NEG_INFINITY,
        };
        let mut totals = vec![initial; self.n_targets];
        let mut seen = vec![false; self.n_targets];
        for &root in &self.roots {
            let leaf = self.leaf(root, row);
            for &(target, weight) in &self.weights[leaf.weights.clone()] {
                let weight = f64::from(weight);
                let total = &mut totals[target];
                *total = match self.aggregate {
                    Aggregate::Sum | Aggregate::Average => *total + weight,
                    Aggregate::Min => total.min(weight),
                    Aggregate::Max => total.max(weight),
                };
                seen[target] = true;
            }
        }
        totals
            .iter()
            .enumerate()
            .map(|(target, &total)| {
                let mut value = match self.aggregate {
                    Aggregate::Average => total / self.roots.len().max(1) as f64,
                    Aggregate::Min | Aggregate::Max if !seen[target] => 0.0,
                    _ => total,
                };
                value += self.base_values.get(target).copied().map_or(0.0, f64::from);
                if self.post_transform == PostTransform::Logistic {
                    value = 1.0 / (1.0 + (-value).exp());
                }
                value as f32
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(name: &str, values: &[i64]) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.to_owned(),
            ints: values.to_vec(),
            ..Default::default()
        }
    }

    fn floats(name: &str, values: &[f32]) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.to_owned(),
            floats: values.to_vec(),
            ..Default::default()
        }
    }

    fn strings(name: &str, values: &[&str]) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.to_owned(),
            strings: values.iter().map(|value| value.as_bytes().to_vec()).collect(),
            ..Default::default()
        }
    }

    /// Two trees over two features: tree 0 splits x0 <= 1 (NaN goes true), tree 1 splits
    /// x1 < 5; leaves weigh 1, 2 (tree 0) and 10, 20 (tree 1), on `prefix` targets.
    fn node(op: &str, prefix: &str) -> pb::NodeProto {
        let mut attribute = vec![
            ints("nodes_treeids", &[0, 0, 0, 1, 1, 1]),
            ints("nodes_nodeids", &[0, 1, 2, 0, 1, 2]),
            ints("nodes_featureids", &[0, 0, 0, 1, 0, 0]),
            ints("nodes_truenodeids", &[1, 0, 0, 1, 0, 0]),
            ints("nodes_falsenodeids", &[2, 0, 0, 2, 0, 0]),
            floats("nodes_values", &[1.0, 0.0, 0.0, 5.0, 0.0, 0.0]),
            strings(
                "nodes_modes",
                &["BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LT", "LEAF", "LEAF"],
            ),
            ints("nodes_missing_value_tracks_true", &[1, 0, 0, 0, 0, 0]),
            ints(&format!("{prefix}_treeids"), &[0, 0, 1, 1]),
            ints(&format!("{prefix}_nodeids"), &[1, 2, 1, 2]),
            ints(&format!("{prefix}_ids"), &[0, 0, 0, 0]),
            floats(&format!("{prefix}_weights"), &[0.1, 0.2, 0.3, 0.4]),
        ];
        if prefix == "class" {
            attribute.push(ints("classlabels_int64s", &[0, 1]));
        }
        pb::NodeProto {
            op_type: op.to_owned(),
            attribute,
            ..Default::default()
        }
    }

    #[test]
    fn regressor_sums_the_leaves_the_row_reaches() {
        let ensemble = TreeEnsemble::from_node(&node("TreeEnsembleRegressor", "target")).expect("valid");
        assert_eq!(ensemble.n_trees(), 2);
        assert_eq!(ensemble.n_features(), 2);
        let close = |got: Vec<f32>, want: f32| (got[0] - want).abs() < 1e-6;
        assert!(close(ensemble.predict(&[0.5, 1.0]), 0.1 + 0.3));
        assert!(
            close(ensemble.predict(&[1.0, 5.0]), 0.1 + 0.4),
            "<= includes, < excludes"
        );
        assert!(close(ensemble.predict(&[2.0, 4.9]), 0.2 + 0.3));
        // NaN: tracks true on tree 0; on tree 1 the comparison is false.
        assert!(close(ensemble.predict(&[f32::NAN, f32::NAN]), 0.1 + 0.4));
        assert!(!ensemble.is_classifier());
        assert_eq!(ensemble.classify(&[0.0, 0.0]), None);
    }

    #[test]
    fn binary_classifier_with_one_class_of_weights_gives_one_minus_s_and_s() {
        let ensemble = TreeEnsemble::from_node(&node("TreeEnsembleClassifier", "class")).expect("valid");
        let (label, scores) = ensemble.classify(&[2.0, 6.0]).expect("classifier");
        assert!(
            (scores[1] - 0.6).abs() < 1e-6 && (scores[0] - 0.4).abs() < 1e-6,
            "{scores:?}"
        );
        assert_eq!(label, 1);
        let (label, scores) = ensemble.classify(&[0.0, 0.0]).expect("classifier");
        assert!((scores[1] - 0.4).abs() < 1e-6, "{scores:?}");
        assert_eq!(label, 0);
    }

    #[test]
    fn malformed_ensembles_are_errors_naming_the_attribute() {
        let mut bad = node("TreeEnsembleRegressor", "target");
        bad.attribute[4] = ints("nodes_falsenodeids", &[9, 0, 0, 2, 0, 0]);
        let error = TreeEnsemble::from_node(&bad).expect_err("missing child");
        assert!(error.contains("missing node 9"), "{error}");
        let mut bad = node("TreeEnsembleRegressor", "target");
        bad.attribute[6] = strings(
            "nodes_modes",
            &["BRANCH_XX", "LEAF", "LEAF", "BRANCH_LT", "LEAF", "LEAF"],
        );
        assert!(TreeEnsemble::from_node(&bad).expect_err("mode").contains("BRANCH_XX"));
        let mut bad = node("TreeEnsembleRegressor", "target");
        bad.attribute.remove(0);
        assert!(
            TreeEnsemble::from_node(&bad)
                .expect_err("treeids")
                .contains("nodes_treeids")
        );
        assert!(TreeEnsemble::from_node(&node("Add", "target")).is_err());
    }
}
