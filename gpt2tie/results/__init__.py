"""Result types of every analysis and their JSON form (schema_version 1): the report types
here, one module per further section (memory, diff, quantization, adapter)."""

from gpt2tie.results.explain import (
    ExplainReport as ExplainReport,
)
from gpt2tie.results.explain import (
    ExplainTopic as ExplainTopic,
)
from gpt2tie.results.explain import (
    Explanation as Explanation,
)
from gpt2tie.results.report import (
    NON_FINITE_NAMES as NON_FINITE_NAMES,
)
from gpt2tie.results.report import (
    NON_FINITE_VALUES as NON_FINITE_VALUES,
)
from gpt2tie.results.report import (
    SCHEMA_VERSION as SCHEMA_VERSION,
)
from gpt2tie.results.report import (
    SEVERITY_RANK as SEVERITY_RANK,
)
from gpt2tie.results.report import (
    AliasGroup as AliasGroup,
)
from gpt2tie.results.report import (
    AliasKind as AliasKind,
)
from gpt2tie.results.report import (
    BuiltinConfig as BuiltinConfig,
)
from gpt2tie.results.report import (
    BuiltinList as BuiltinList,
)
from gpt2tie.results.report import (
    CheckpointSummary as CheckpointSummary,
)
from gpt2tie.results.report import (
    CheckReport as CheckReport,
)
from gpt2tie.results.report import (
    CheckResult as CheckResult,
)
from gpt2tie.results.report import (
    Component as Component,
)
from gpt2tie.results.report import (
    ComponentReading as ComponentReading,
)
from gpt2tie.results.report import (
    ConversionOnLoad as ConversionOnLoad,
)
from gpt2tie.results.report import (
    CountReport as CountReport,
)
from gpt2tie.results.report import (
    DtypeCount as DtypeCount,
)
from gpt2tie.results.report import (
    Finding as Finding,
)
from gpt2tie.results.report import (
    GgufReference as GgufReference,
)
from gpt2tie.results.report import (
    GgufSummary as GgufSummary,
)
from gpt2tie.results.report import (
    GgufTypeCount as GgufTypeCount,
)
from gpt2tie.results.report import (
    Head as Head,
)
from gpt2tie.results.report import (
    HeadKind as HeadKind,
)
from gpt2tie.results.report import (
    InspectReport as InspectReport,
)
from gpt2tie.results.report import (
    ModelInfo as ModelInfo,
)
from gpt2tie.results.report import (
    ModuleCount as ModuleCount,
)
from gpt2tie.results.report import (
    ParameterCounts as ParameterCounts,
)
from gpt2tie.results.report import (
    Severity as Severity,
)
from gpt2tie.results.report import (
    Source as Source,
)
from gpt2tie.results.report import (
    SourceKind as SourceKind,
)
from gpt2tie.results.report import (
    TieOnLoad as TieOnLoad,
)
from gpt2tie.results.report import (
    from_json_value as from_json_value,
)
from gpt2tie.results.report import (
    to_json_value as to_json_value,
)
