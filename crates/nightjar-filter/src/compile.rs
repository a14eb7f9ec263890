//! [`CompiledFilter`]: a filter's SQL checked, planned once, and evaluated on each batch.
//!
//! A filter is one read-only query over the table `alerts`, `SELECT cols FROM alerts WHERE
//! cond`, or a bare condition (read as `SELECT object_id, source_id FROM alerts WHERE cond`).
//! It is parsed with DataFusion's SQL parser (identifiers case-sensitive), checked (one
//! `SELECT` from `alerts` only: no statements, DDL, DML, joins, subqueries, CTEs, set
//! operations, grouping, ordering, limits or table functions; only an allow-list of scalar
//! functions, none of which reads files, the network or the clock), planned, type-checked, and
//! turned into physical expressions once. Each batch then costs one predicate evaluation and
//! one projection of the passing rows, with no query executor in between.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray, new_null_array};
use datafusion::arrow::compute::{FilterBuilder, and, filter_record_batch, prep_null_mask_filter};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{DFSchema, TableReference};
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::builder::LogicalTableSource;
use datafusion::logical_expr::planner::{ContextProvider, ExprPlanner};
use datafusion::logical_expr::{AggregateUDF, HigherOrderUDF, LogicalPlan, ScalarUDF, TableSource, WindowUDF};
use datafusion::optimizer::Analyzer;
use datafusion::physical_expr::{PhysicalExpr, create_physical_expr, execution_props::ExecutionProps};
use datafusion::sql::planner::{ParserOptions, SqlToRel};
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, GroupByExpr, Ident, Query, SelectItem, SetExpr, Statement, TableFactor, visit_expressions,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use nightjar_core::Survey;

use crate::batch::{AlertBatch, ColumnSelection};
use crate::error::{FilterError, Location};
use crate::schema::AlertSchema;

/// The table every filter reads.
pub const TABLE: &str = "alerts";

/// Scalar functions a filter may not call: non-deterministic ones (a replay must select the same
/// alerts) and ones whose output size a filter could blow up.
const DENIED_FUNCTIONS: [&str; 6] = ["random", "uuid", "repeat", "now", "current_date", "current_time"];

/// Limits every filter runs under.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterLimits {
    /// Longest SQL text accepted, bytes.
    pub max_sql_bytes: usize,
    /// Deepest expression nesting the parser accepts.
    pub max_nesting: usize,
    /// Time one batch may take; see `max_overruns`.
    pub time_budget: Duration,
    /// A filter over its time budget on this many batches in a row is disabled.
    pub max_overruns: u32,
    /// Largest output (selected columns of the passing alerts) of one batch, bytes.
    pub max_output_bytes: usize,
}

impl Default for FilterLimits {
    fn default() -> FilterLimits {
        FilterLimits {
            max_sql_bytes: 16 * 1024,
            max_nesting: 64,
            time_budget: Duration::from_millis(100),
            max_overruns: 3,
            max_output_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What one filter selected from one batch.
#[derive(Debug, Clone)]
pub struct FilterOutput {
    /// Positions in the batch of the alerts that passed, ascending.
    pub passed: Vec<usize>,
    /// The selected columns, one row per passing alert.
    pub selected: RecordBatch,
    /// Time the evaluation took.
    pub elapsed: Duration,
}

/// Counters of one filter since it was compiled.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FilterMetrics {
    pub batches: u64,
    pub alerts_seen: u64,
    pub alerts_passed: u64,
    pub time: Duration,
    pub errors: u64,
    pub overruns: u64,
    pub disabled: bool,
}

/// A filter planned once and evaluated on each batch.
pub struct CompiledFilter {
    name: String,
    sql: String,
    surveys: Vec<Survey>,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    projection: Vec<Arc<dyn PhysicalExpr>>,
    output_schema: SchemaRef,
    columns_read: Vec<String>,
    /// Positions of the top-level columns the filter reads.
    top_level_read: Vec<usize>,
    /// True for `SELECT *`: every column is read.
    read_all_columns: bool,
    selection: ColumnSelection,
    limits: FilterLimits,
    overruns_in_a_row: u32,
    disabled: Option<FilterError>,
    metrics: FilterMetrics,
}

impl std::fmt::Debug for CompiledFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledFilter")
            .field("name", &self.name)
            .field("sql", &self.sql)
            .field("surveys", &self.surveys)
            .field("columns_read", &self.columns_read)
            .finish_non_exhaustive()
    }
}

impl CompiledFilter {
    /// Checks and plans `sql` against `schema`. `surveys` restricts the alerts the filter
    /// sees (empty: every survey).
    pub fn compile(
        name: &str,
        sql: &str,
        surveys: &[Survey],
        schema: &AlertSchema,
        limits: &FilterLimits,
    ) -> Result<CompiledFilter, FilterError> {
        let forbidden = |reason: String| FilterError::Forbidden {
            filter: name.to_string(),
            reason,
        };
        if sql.len() > limits.max_sql_bytes {
            return Err(forbidden(format!(
                "the SQL is {} bytes long, more than the limit of {} bytes",
                sql.len(),
                limits.max_sql_bytes
            )));
        }
        let trimmed = sql.trim();
        let is_query = trimmed
            .split_whitespace()
            .next()
            .is_some_and(|word| word.eq_ignore_ascii_case("select") || word.eq_ignore_ascii_case("with"));
        // A bare condition is wrapped on a line of its own, so positions shift by one line.
        let (text, line_offset) = if is_query || trimmed.is_empty() {
            (sql.to_string(), 0)
        } else {
            (format!("SELECT object_id, source_id FROM {TABLE} WHERE\n{sql}"), 1)
        };
        let statements = Parser::new(&GenericDialect {})
            .with_recursion_limit(limits.max_nesting)
            .try_with_sql(&text)
            .and_then(|mut parser| parser.parse_statements())
            .map_err(|error| FilterError::Syntax {
                filter: name.to_string(),
                message: shift_line_numbers(&error.to_string(), line_offset),
            })?;
        let statement = match statements.as_slice() {
            [statement] => statement.clone(),
            [] => return Err(forbidden("the SQL is empty: write a SELECT or a condition".to_string())),
            _ => {
                return Err(forbidden(format!(
                    "{} statements: a filter is one SELECT",
                    statements.len()
                )));
            }
        };
        let Statement::Query(query) = &statement else {
            return Err(forbidden(format!(
                "{}: a filter is one SELECT over {TABLE}",
                statement_kind(&statement)
            )));
        };
        let table_aliases = check_query_shape(query).map_err(forbidden)?;
        let (columns_read, wildcard) =
            check_columns(&statement, schema, &table_aliases, line_offset).map_err(|error| match error {
                ColumnCheckError::Unknown { column, location } => FilterError::UnknownColumn {
                    filter: name.to_string(),
                    suggestions: schema.suggest(&column, 3),
                    column,
                    location,
                },
                ColumnCheckError::Forbidden(reason) => forbidden(reason),
            })?;

        let provider = FilterContext::new(schema);
        let planner = SqlToRel::new_with_options(
            &provider,
            ParserOptions::new()
                .with_enable_ident_normalization(false)
                .with_map_string_types_to_utf8view(false),
        );
        let plan_error = |message: String| FilterError::Plan {
            filter: name.to_string(),
            message,
        };
        let plan = planner
            .sql_statement_to_plan(statement)
            .map_err(|error| plan_error(error.strip_backtrace()))?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|error| forbidden(error.strip_backtrace()))?;
        let plan = Analyzer::new()
            .execute_and_check(plan, &provider.options, |_, _| {})
            .map_err(|error| plan_error(error.strip_backtrace()))?;
        let (predicate, projection, output_fields) = physical_parts(&plan).map_err(|error| match error {
            PartsError::Forbidden(reason) => forbidden(reason),
            PartsError::Plan(message) => plan_error(message),
        })?;
        if let Some((predicate, input_schema)) = &predicate {
            let data_type = predicate
                .data_type(input_schema)
                .map_err(|error| plan_error(error.strip_backtrace()))?;
            if data_type != DataType::Boolean {
                return Err(plan_error(format!(
                    "the WHERE condition is of type {data_type}, not a boolean"
                )));
            }
        }

        let mut selection = ColumnSelection::none(schema);
        if wildcard {
            selection = ColumnSelection::all(schema);
        }
        for column in ["survey", "object_id", "source_id"]
            .iter()
            .copied()
            .chain(columns_read.iter().map(String::as_str))
        {
            selection.add(schema, column);
        }
        let arrow_schema = schema.arrow();
        let top_level_read: Vec<usize> = ["survey", "object_id", "source_id"]
            .iter()
            .copied()
            .chain(columns_read.iter().map(String::as_str))
            .filter_map(|path| arrow_schema.index_of(path.split('.').next().unwrap_or(path)).ok())
            .collect::<BTreeSet<usize>>()
            .into_iter()
            .collect();
        Ok(CompiledFilter {
            top_level_read,
            read_all_columns: wildcard,
            name: name.to_string(),
            sql: sql.to_string(),
            surveys: surveys.to_vec(),
            predicate: predicate.map(|(predicate, _)| predicate),
            projection,
            output_schema: Arc::new(Schema::new(output_fields)),
            columns_read: columns_read.into_iter().collect(),
            selection,
            limits: limits.clone(),
            overruns_in_a_row: 0,
            disabled: None,
            metrics: FilterMetrics::default(),
        })
    }

    /// The filter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The SQL as written.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The columns the SQL reads (dotted paths), sorted.
    pub fn columns_read(&self) -> &[String] {
        &self.columns_read
    }

    /// The columns a batch must have filled for this filter.
    pub fn selection(&self) -> &ColumnSelection {
        &self.selection
    }

    /// The schema of [`FilterOutput::selected`].
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// Counters since the filter was compiled.
    pub fn metrics(&self) -> FilterMetrics {
        self.metrics
    }

    /// Why the filter is disabled, if it is.
    pub fn disabled(&self) -> Option<&FilterError> {
        self.disabled.as_ref()
    }

    /// Evaluates the filter on one batch. The batch must have been built with this filter's
    /// columns selected (see [`crate::FilterEngine`]).
    ///
    /// A filter over its time budget on [`FilterLimits::max_overruns`] batches in a row is
    /// disabled: this call and every later one return [`FilterError::Disabled`].
    pub fn evaluate(&mut self, batch: &AlertBatch) -> Result<FilterOutput, FilterError> {
        if let Some(error) = &self.disabled {
            return Err(error.clone());
        }
        let started = Instant::now();
        let result = self.evaluate_inner(batch.record_batch());
        let elapsed = started.elapsed();
        self.metrics.batches += 1;
        self.metrics.alerts_seen += batch.len() as u64;
        self.metrics.time += elapsed;
        if elapsed > self.limits.time_budget {
            self.metrics.overruns += 1;
            self.overruns_in_a_row += 1;
            tracing::warn!(filter = %self.name, elapsed = ?elapsed, budget = ?self.limits.time_budget, "filter over its time budget");
            if self.overruns_in_a_row >= self.limits.max_overruns {
                let error = FilterError::Disabled {
                    filter: self.name.clone(),
                    budget: self.limits.time_budget,
                    overruns: self.overruns_in_a_row,
                    last: elapsed,
                };
                tracing::error!(filter = %self.name, error = %error, "filter disabled");
                self.metrics.disabled = true;
                self.disabled = Some(error.clone());
                return Err(error);
            }
        } else {
            self.overruns_in_a_row = 0;
        }
        match result {
            Ok((passed, selected)) => {
                self.metrics.alerts_passed += passed.len() as u64;
                Ok(FilterOutput {
                    passed,
                    selected,
                    elapsed,
                })
            }
            Err(error) => {
                self.metrics.errors += 1;
                Err(error)
            }
        }
    }

    fn evaluate_inner(&self, record: &RecordBatch) -> Result<(Vec<usize>, RecordBatch), FilterError> {
        let evaluation = |message: String| FilterError::Evaluation {
            filter: self.name.clone(),
            message,
        };
        let n_rows = record.num_rows();
        let mut mask = match &self.predicate {
            Some(predicate) => {
                let value = predicate
                    .evaluate(record)
                    .and_then(|value| value.into_array(n_rows))
                    .map_err(|error| evaluation(error.strip_backtrace()))?;
                let Some(booleans) = value.as_any().downcast_ref::<BooleanArray>() else {
                    return Err(evaluation(format!("the condition gave {} values", value.data_type())));
                };
                if booleans.null_count() > 0 {
                    prep_null_mask_filter(booleans)
                } else {
                    booleans.clone()
                }
            }
            None => BooleanArray::from(vec![true; n_rows]),
        };
        if !self.surveys.is_empty() {
            let surveys = record
                .column_by_name("survey")
                .and_then(|column| column.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| evaluation("the batch has no survey column".to_string()))?;
            let wanted: BooleanArray = surveys
                .iter()
                .map(|survey| {
                    Some(survey.is_some_and(|survey| self.surveys.iter().any(|wanted| wanted.as_str() == survey)))
                })
                .collect();
            mask = and(&mask, &wanted).map_err(|error| evaluation(error.to_string()))?;
        }
        let passed: Vec<usize> = mask
            .iter()
            .enumerate()
            .filter_map(|(position, pass)| (pass == Some(true)).then_some(position))
            .collect();
        let filtered = self.filter_rows(record, &mask, passed.len())?;
        let columns: Vec<ArrayRef> = self
            .projection
            .iter()
            .map(|expr| {
                expr.evaluate(&filtered)
                    .and_then(|value| value.into_array(filtered.num_rows()))
                    .map_err(|error| evaluation(error.strip_backtrace()))
            })
            .collect::<Result<_, _>>()?;
        let bytes: usize = columns.iter().map(|column| column.get_array_memory_size()).sum();
        if bytes > self.limits.max_output_bytes {
            return Err(FilterError::OutputTooLarge {
                filter: self.name.clone(),
                bytes,
                cap: self.limits.max_output_bytes,
            });
        }
        let fields: Vec<Field> = self
            .output_schema
            .fields()
            .iter()
            .zip(&columns)
            .map(|(field, column)| Field::new(field.name(), column.data_type().clone(), true))
            .collect();
        let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(filtered.num_rows()));
        let selected = RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
            .map_err(|error| evaluation(error.to_string()))?;
        Ok((passed, selected))
    }
}

impl CompiledFilter {
    /// The passing rows of the columns this filter reads; the other columns become nulls of the
    /// right length, so a batch with hundreds of columns costs only what the filter reads.
    fn filter_rows(
        &self,
        record: &RecordBatch,
        mask: &BooleanArray,
        n_passed: usize,
    ) -> Result<RecordBatch, FilterError> {
        let evaluation = |message: String| FilterError::Evaluation {
            filter: self.name.clone(),
            message,
        };
        if self.read_all_columns {
            return filter_record_batch(record, mask).map_err(|error| evaluation(error.to_string()));
        }
        let predicate = FilterBuilder::new(mask).optimize().build();
        let columns: Vec<ArrayRef> = record
            .columns()
            .iter()
            .enumerate()
            .map(|(position, column)| {
                if self.top_level_read.contains(&position) {
                    predicate.filter(column).map_err(|error| evaluation(error.to_string()))
                } else {
                    Ok(new_null_array(column.data_type(), n_passed))
                }
            })
            .collect::<Result<_, _>>()?;
        let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(n_passed));
        RecordBatch::try_new_with_options(record.schema(), columns, &options)
            .map_err(|error| evaluation(error.to_string()))
    }
}

fn shift_line_numbers(message: &str, line_offset: u64) -> String {
    if line_offset == 0 {
        return message.to_string();
    }
    // sqlparser writes "at Line: N, Column: M".
    let Some(start) = message.find("Line: ") else {
        return message.to_string();
    };
    let digits: String = message[start + 6..].chars().take_while(char::is_ascii_digit).collect();
    match digits.parse::<u64>() {
        Ok(line) => format!(
            "{}Line: {}{}",
            &message[..start],
            line.saturating_sub(line_offset).max(1),
            &message[start + 6 + digits.len()..]
        ),
        Err(_) => message.to_string(),
    }
}

fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    format!("{} is a statement, not a query", words.join(" ").to_uppercase())
}

/// Checks that a query is one plain SELECT from `alerts`; returns the names the table goes by.
fn check_query_shape(query: &Query) -> Result<Vec<String>, String> {
    if query.with.is_some() {
        return Err("WITH (common table expressions): a filter reads alerts directly".to_string());
    }
    if query.order_by.is_some() {
        return Err("ORDER BY: a filter selects alerts one by one, in batch order".to_string());
    }
    if query.limit_clause.is_some() || query.fetch.is_some() {
        return Err("LIMIT / FETCH: a filter selects alerts one by one, it cannot cap a batch".to_string());
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err("only a plain SELECT is allowed (no UNION, VALUES or nested queries)".to_string());
    };
    if select.distinct.is_some() {
        return Err("DISTINCT: a filter selects alerts one by one".to_string());
    }
    match &select.group_by {
        GroupByExpr::Expressions(expressions, _) if expressions.is_empty() => {}
        _ => return Err("GROUP BY: a filter selects alerts one by one, it does not aggregate".to_string()),
    }
    if select.having.is_some() {
        return Err("HAVING: a filter does not aggregate".to_string());
    }
    if !select.named_window.is_empty() || select.qualify.is_some() {
        return Err("window functions: a filter selects alerts one by one".to_string());
    }
    if select.into.is_some() {
        return Err("SELECT INTO writes a table: a filter is read-only".to_string());
    }
    let [from] = select.from.as_slice() else {
        return Err(format!(
            "a filter reads exactly one table, {TABLE}, not {}",
            select.from.len()
        ));
    };
    if !from.joins.is_empty() {
        return Err(format!("JOIN: a filter reads only the table {TABLE}"));
    }
    match &from.relation {
        TableFactor::Table { name, alias, args, .. } => {
            if args.is_some() {
                return Err(format!("table function {name}: a filter reads only the table {TABLE}"));
            }
            let table = name.to_string();
            if table != TABLE {
                return Err(format!("table {table}: a filter reads only the table {TABLE}"));
            }
            let mut names = vec![TABLE.to_string()];
            if let Some(alias) = alias {
                names.push(alias.name.value.clone());
            }
            Ok(names)
        }
        TableFactor::TableFunction { .. } | TableFactor::Function { .. } | TableFactor::UNNEST { .. } => Err(format!(
            "table functions (generate_series, range, unnest, ...): a filter reads only the table {TABLE}"
        )),
        TableFactor::Derived { .. } => Err("subquery in FROM: a filter reads the table alerts directly".to_string()),
        other => Err(format!("FROM {other}: a filter reads only the table {TABLE}")),
    }
}

enum ColumnCheckError {
    Unknown { column: String, location: Location },
    Forbidden(String),
}

/// Every column the statement reads must exist; returns the columns read and whether the
/// projection has a wildcard.
fn check_columns(
    statement: &Statement,
    schema: &AlertSchema,
    table_aliases: &[String],
    line_offset: u64,
) -> Result<(BTreeSet<String>, bool), ColumnCheckError> {
    let mut read = BTreeSet::new();
    let mut select_aliases: Vec<String> = Vec::new();
    let mut wildcard = false;
    if let Statement::Query(query) = statement
        && let SetExpr::Select(select) = query.body.as_ref()
    {
        for item in &select.projection {
            match item {
                SelectItem::ExprWithAlias { alias, .. } => select_aliases.push(alias.value.clone()),
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => wildcard = true,
                _ => {}
            }
        }
    }
    let location = |ident: &Ident| Location {
        line: ident.span.start.line.saturating_sub(line_offset).max(1),
        column: ident.span.start.column,
    };
    let outcome = visit_expressions(statement, |expr| {
        let idents: &[Ident] = match expr {
            SqlExpr::Identifier(ident) => std::slice::from_ref(ident),
            SqlExpr::CompoundIdentifier(idents) => idents,
            SqlExpr::Subquery(_) | SqlExpr::Exists { .. } | SqlExpr::InSubquery { .. } => {
                return ControlFlow::Break(ColumnCheckError::Forbidden(
                    "subqueries: a filter reads each alert's own row only".to_string(),
                ));
            }
            _ => return ControlFlow::Continue(()),
        };
        let Some(first) = idents.first() else {
            return ControlFlow::Continue(());
        };
        let mut parts: Vec<&str> = idents.iter().map(|ident| ident.value.as_str()).collect();
        if parts.len() > 1 && table_aliases.iter().any(|alias| alias == parts[0]) && !schema.has_path(parts[0]) {
            parts.remove(0);
        }
        let path = parts.join(".");
        if schema.has_path(&path) {
            read.insert(path);
            return ControlFlow::Continue(());
        }
        if parts.len() == 1 && select_aliases.iter().any(|alias| alias == &path) {
            return ControlFlow::Continue(());
        }
        ControlFlow::Break(ColumnCheckError::Unknown {
            column: path,
            location: location(first),
        })
    });
    match outcome {
        ControlFlow::Break(error) => Err(error),
        ControlFlow::Continue(()) => Ok((read, wildcard)),
    }
}

enum PartsError {
    Forbidden(String),
    Plan(String),
}

type PhysicalParts = (
    Option<(Arc<dyn PhysicalExpr>, Schema)>,
    Vec<Arc<dyn PhysicalExpr>>,
    Vec<Field>,
);

/// Turns a `Projection(Filter?(SubqueryAlias?(TableScan alerts)))` plan into physical
/// expressions; any other node is refused.
fn physical_parts(plan: &LogicalPlan) -> Result<PhysicalParts, PartsError> {
    let props = ExecutionProps::new();
    let LogicalPlan::Projection(projection) = plan else {
        return Err(PartsError::Forbidden(format!(
            "the query plans to {}, not a projection of alerts",
            plan.display()
        )));
    };
    let mut node = projection.input.as_ref();
    let mut predicate = None;
    loop {
        match node {
            LogicalPlan::Filter(filter) if predicate.is_none() => {
                predicate = Some(filter);
                node = filter.input.as_ref();
            }
            LogicalPlan::SubqueryAlias(alias) => node = alias.input.as_ref(),
            LogicalPlan::TableScan(scan) if scan.table_name.table() == TABLE && scan.projection.is_none() => break,
            other => {
                return Err(PartsError::Forbidden(format!(
                    "the query needs a {} step; a filter selects alerts one by one from {TABLE}",
                    other.display()
                )));
            }
        }
    }
    let physical = |expr: &datafusion::logical_expr::Expr, schema: &DFSchema| {
        create_physical_expr(expr, schema, &props).map_err(|error| PartsError::Plan(error.strip_backtrace()))
    };
    let predicate = match predicate {
        Some(filter) => {
            let input = filter.input.schema();
            Some((physical(&filter.predicate, input)?, input.as_arrow().clone()))
        }
        None => None,
    };
    let input = projection.input.schema();
    let expressions = projection
        .expr
        .iter()
        .map(|expr| physical(expr, input))
        .collect::<Result<Vec<_>, _>>()?;
    let fields = projection
        .schema
        .fields()
        .iter()
        .map(|field| Field::new(output_name(field.name()), field.data_type().clone(), true))
        .collect();
    Ok((predicate, expressions, fields))
}

/// The name of a selected column as the filter wrote it: DataFusion's `alerts.candidate[magpsf]`
/// becomes `candidate.magpsf`; aliases stay as they are.
fn output_name(planned: &str) -> String {
    planned
        .replace(&format!("{TABLE}."), "")
        .replace(']', "")
        .replace('[', ".")
}

/// What the SQL planner may see: the table `alerts` and the allowed scalar functions.
struct FilterContext {
    table: Arc<dyn TableSource>,
    functions: HashMap<String, Arc<ScalarUDF>>,
    planners: Vec<Arc<dyn ExprPlanner>>,
    options: ConfigOptions,
}

impl FilterContext {
    fn new(schema: &AlertSchema) -> FilterContext {
        let mut functions = HashMap::new();
        for function in datafusion::functions::all_default_functions() {
            if DENIED_FUNCTIONS.contains(&function.name()) {
                continue;
            }
            for alias in function.aliases() {
                functions.insert(alias.clone(), function.clone());
            }
            functions.insert(function.name().to_string(), function);
        }
        let mut options = ConfigOptions::default();
        options.sql_parser.enable_ident_normalization = false;
        FilterContext {
            table: Arc::new(LogicalTableSource::new(schema.arrow().clone())),
            functions,
            planners: vec![Arc::new(
                datafusion::functions::core::planner::CoreFunctionPlanner::default(),
            )],
            options,
        }
    }
}

impl ContextProvider for FilterContext {
    fn get_table_source(&self, name: TableReference) -> datafusion::common::Result<Arc<dyn TableSource>> {
        if name.table() == TABLE && name.schema().is_none() {
            Ok(self.table.clone())
        } else {
            datafusion::common::plan_err!("table {name} does not exist: a filter reads only the table {TABLE}")
        }
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        &self.planners
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.functions.get(name).cloned()
    }

    fn get_higher_order_meta(&self, _name: &str) -> Option<Arc<HigherOrderUDF>> {
        None
    }

    fn get_aggregate_meta(&self, _name: &str) -> Option<Arc<AggregateUDF>> {
        None
    }

    fn get_window_meta(&self, _name: &str) -> Option<Arc<WindowUDF>> {
        None
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        &self.options
    }

    fn udf_names(&self) -> Vec<String> {
        self.functions.keys().cloned().collect()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udaf_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udwf_names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Names of the scalar functions filters may call, sorted.
pub fn allowed_functions() -> Vec<String> {
    let mut names: Vec<String> = datafusion::functions::all_default_functions()
        .iter()
        .filter(|function| !DENIED_FUNCTIONS.contains(&function.name()))
        .map(|function| function.name().to_string())
        .collect();
    names.sort();
    names
}
