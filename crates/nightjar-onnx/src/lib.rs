//! ONNX models for nightjar's science modules, loaded once from bytes and run on rows of f32
//! features.
//!
//! A graph that is a single ONNX-ML tree-ensemble node (`TreeEnsembleRegressor`, which tract
//! 0.23 cannot run, or `TreeEnsembleClassifier`, which tract runs in time linear in the
//! number of leaves per tree) is read through tract-onnx's protobuf types and evaluated by
//! [`TreeEnsemble`] (docs/adr/0005). Every other graph goes through tract-onnx.
//! [`OnnxModel::load`] picks the engine from the graph.

mod trees;

use std::io::Cursor;
use std::sync::Arc;

use tract_onnx::pb;
use tract_onnx::prelude::*;

pub use trees::TreeEnsemble;

/// Why a model could not be loaded or run. `model` names the model (its path or bundled name).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OnnxError {
    /// The bytes are not an ONNX model, or tract cannot build a plan from it.
    #[error("ONNX model {model}: cannot load: {reason}")]
    Load { model: String, reason: String },
    /// The graph is valid ONNX but not one nightjar can evaluate.
    #[error("ONNX model {model}: unsupported graph: {reason}")]
    Unsupported { model: String, reason: String },
    /// An input row has the wrong length.
    #[error("ONNX model {model}: input has {got} features, the model takes {expected}")]
    InputShape { model: String, expected: usize, got: usize },
    /// Running the model failed.
    #[error("ONNX model {model}: run failed: {reason}")]
    Run { model: String, reason: String },
}

/// One output tensor of a model run, as f32 values in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The graph's name for the output (`probabilities`, `score`, ...).
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, cast to f32.
    pub values: Vec<f32>,
}

enum Engine {
    Tract {
        plan: Arc<TypedRunnableModel>,
        output_names: Vec<String>,
    },
    Trees {
        ensemble: TreeEnsemble,
        output_names: Vec<String>,
    },
}

/// A loaded ONNX model taking one float input of shape `[1, n_features]` per row.
pub struct OnnxModel {
    name: String,
    n_features: usize,
    engine: Engine,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("name", &self.name)
            .field("n_features", &self.n_features)
            .field("engine", &self.engine())
            .finish()
    }
}

impl OnnxModel {
    /// Loads a model from the bytes of an `.onnx` file. `name` names it in errors. The
    /// graph's single input must be a float matrix `[n, n_features]` with `n_features` known.
    pub fn load(name: &str, bytes: &[u8]) -> Result<OnnxModel, OnnxError> {
        let load_error = |reason: String| OnnxError::Load {
            model: name.to_owned(),
            reason,
        };
        let proto = tract_onnx::onnx()
            .proto_model_for_read(&mut Cursor::new(bytes))
            .map_err(|error| load_error(format!("{error:#}")))?;
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| load_error("the model has no graph".to_owned()))?;
        let n_features = input_width(name, graph)?;
        if let [node] = graph.node.as_slice()
            && matches!(
                node.op_type.as_str(),
                "TreeEnsembleRegressor" | "TreeEnsembleClassifier"
            )
        {
            match TreeEnsemble::from_node(node) {
                Ok(ensemble) => {
                    return Ok(OnnxModel {
                        name: name.to_owned(),
                        n_features,
                        engine: Engine::Trees {
                            ensemble,
                            output_names: node.output.clone(),
                        },
                    });
                }
                // A variant the native evaluator does not cover: tract may (classifiers).
                Err(reason) if node.op_type == "TreeEnsembleRegressor" => {
                    return Err(OnnxError::Unsupported {
                        model: name.to_owned(),
                        reason,
                    });
                }
                Err(_) => {}
            }
        }
        let output_names = graph.output.iter().map(|output| output.name.clone()).collect();
        let plan = tract_onnx::onnx()
            .model_for_proto_model(&proto)
            .and_then(|model| model.with_input_fact(0, f32::fact([1, n_features]).into()))
            .and_then(|model| model.into_optimized())
            .and_then(|model| model.into_runnable())
            .map_err(|error| load_error(format!("{error:#}")))?;
        Ok(OnnxModel {
            name: name.to_owned(),
            n_features,
            engine: Engine::Tract { plan, output_names },
        })
    }

    /// The model's name as given to [`OnnxModel::load`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The engine that runs the model: `native-trees` or `tract`.
    pub fn engine(&self) -> &'static str {
        match self.engine {
            Engine::Tract { .. } => "tract",
            Engine::Trees { .. } => "native-trees",
        }
    }

    /// The number of features of one input row.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Runs the model on one row of features and returns every float or integer output.
    pub fn run(&self, row: &[f32]) -> Result<Vec<Output>, OnnxError> {
        if row.len() != self.n_features {
            return Err(OnnxError::InputShape {
                model: self.name.clone(),
                expected: self.n_features,
                got: row.len(),
            });
        }
        match &self.engine {
            Engine::Trees { ensemble, output_names } => {
                let name = |position: usize, default: &str| {
                    output_names
                        .get(position)
                        .cloned()
                        .unwrap_or_else(|| default.to_owned())
                };
                match ensemble.classify(row) {
                    Some((label, scores)) => Ok(vec![
                        Output {
                            name: name(0, "Y"),
                            shape: vec![1],
                            values: vec![label as f32],
                        },
                        Output {
                            name: name(1, "Z"),
                            shape: vec![1, scores.len()],
                            values: scores,
                        },
                    ]),
                    None => {
                        let values = ensemble.predict(row);
                        Ok(vec![Output {
                            name: name(0, "Y"),
                            shape: vec![1, values.len()],
                            values,
                        }])
                    }
                }
            }
            Engine::Tract { plan, output_names } => {
                let run_error = |reason: String| OnnxError::Run {
                    model: self.name.clone(),
                    reason,
                };
                let input =
                    Tensor::from_shape(&[1, self.n_features], row).map_err(|error| run_error(format!("{error:#}")))?;
                let outputs = plan
                    .run(tvec!(input.into()))
                    .map_err(|error| run_error(format!("{error:#}")))?;
                outputs
                    .iter()
                    .enumerate()
                    .map(|(position, value)| {
                        let tensor = value
                            .cast_to::<f32>()
                            .map_err(|error| run_error(format!("output {position}: {error:#}")))?;
                        let values = tensor
                            .to_plain_array_view::<f32>()
                            .map_err(|error| run_error(format!("output {position}: {error:#}")))?
                            .iter()
                            .copied()
                            .collect();
                        Ok(Output {
                            name: output_names.get(position).cloned().unwrap_or_default(),
                            shape: tensor.shape().to_vec(),
                            values,
                        })
                    })
                    .collect()
            }
        }
    }

    /// Runs the model on one row and returns the output named `output`.
    pub fn run_output(&self, row: &[f32], output: &str) -> Result<Output, OnnxError> {
        self.run(row)?
            .into_iter()
            .find(|candidate| candidate.name == output)
            .ok_or_else(|| OnnxError::Run {
                model: self.name.clone(),
                reason: format!("the model has no output named {output:?}"),
            })
    }
}

/// The width of the graph's single input, `[n, width]` with a known width.
fn input_width(name: &str, graph: &pb::GraphProto) -> Result<usize, OnnxError> {
    let unsupported = |reason: String| OnnxError::Unsupported {
        model: name.to_owned(),
        reason,
    };
    let initializers: Vec<&str> = graph.initializer.iter().map(|init| init.name.as_str()).collect();
    let inputs: Vec<&pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|input| !initializers.contains(&input.name.as_str()))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(unsupported(format!("{} inputs, expected one", inputs.len())));
    };
    let dims = input
        .r#type
        .as_ref()
        .and_then(|value_type| value_type.value.as_ref())
        .and_then(|value| match value {
            pb::type_proto::Value::TensorType(tensor) => tensor.shape.as_ref(),
        })
        .map(|shape| &shape.dim)
        .ok_or_else(|| unsupported(format!("input {:?} is not a tensor of known rank", input.name)))?;
    let width = match dims.as_slice() {
        [_, width] => width.value.as_ref().and_then(|value| match value {
            pb::tensor_shape_proto::dimension::Value::DimValue(width) => usize::try_from(*width).ok(),
            _ => None,
        }),
        _ => None,
    };
    width.filter(|&width| width > 0).ok_or_else(|| {
        unsupported(format!(
            "input {:?} must be a matrix [n, features] with a known number of features",
            input.name
        ))
    })
}
