import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import ts from 'typescript';

/**
 * The schemas of every kind the chart renders (Kubernetes' own from kubernetes-models, KEDA's and
 * prometheus-operator's from their CRDs), keyed by "apiVersion/kind". A kind missing here is an
 * error, not a pass: every rendered document is checked. `module` is where the kind's TypeScript
 * interface (I<kind>) lives, for the unknown-field check.
 */
type ModelClass = new (data: never) => { validate(): void };
const KINDS: Record<string, { model: ModelClass; module: string }> = {
  'v1/ConfigMap': { model: ConfigMap, module: 'kubernetes-models/v1/ConfigMap' },
  'v1/Secret': { model: Secret, module: 'kubernetes-models/v1/Secret' },
  'v1/Service': { model: Service, module: 'kubernetes-models/v1/Service' },
  'v1/ServiceAccount': { model: ServiceAccount, module: 'kubernetes-models/v1/ServiceAccount' },
  'v1/Pod': { model: Pod, module: 'kubernetes-models/v1/Pod' },
  'apps/v1/Deployment': { model: Deployment, module: 'kubernetes-models/apps/v1/Deployment' },
  'policy/v1/PodDisruptionBudget': { model: PodDisruptionBudget, module: 'kubernetes-models/policy/v1/PodDisruptionBudget' },
  'autoscaling/v2/HorizontalPodAutoscaler': { model: HorizontalPodAutoscaler, module: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler' },
  'networking.k8s.io/v1/NetworkPolicy': { model: NetworkPolicy, module: 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy' },
  'keda.sh/v1alpha1/ScaledObject': { model: ScaledObject, module: '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject' },
  'monitoring.coreos.com/v1/ServiceMonitor': {
    model: ServiceMonitor,
    module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor',
  },
  'monitoring.coreos.com/v1/PrometheusRule': {
    model: PrometheusRule,
    module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule',
  },
};

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

function kindOf(doc: K8sObject) {
  const key = `${doc.apiVersion}/${doc.kind}`;
  const kind = KINDS[key];
  if (kind === undefined) throw new Error(`${key} ${doc.metadata?.name}: no schema known for this kind`);
  return kind;
}

/** Throws with "<kind>/<name>: <what is wrong>" when the object does not match its kind's schema. */
export function validateObject(doc: K8sObject): void {
  const { model: Model } = kindOf(doc);
  try {
    new Model(doc as never).validate();
  } catch (err) {
    throw new Error(`${doc.kind}/${doc.metadata.name}: ${(err as Error).message}`);
  }
}

/**
 * The OpenAPI schemas leave unknown fields alone, so a misspelt field (`securityContex`) would pass
 * them and be dropped by the API server. The models' TypeScript interfaces list every known field:
 * each document becomes an object literal typed with its kind's interface, and TypeScript's excess
 * property check names every field that does not exist. Returns "<label>: <message>" per problem.
 */
export function unknownFields(docs: readonly { label: string; doc: K8sObject }[]): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const file = join(here, '__rendered_manifests__.ts');
  const lines: string[] = [];
  const spans: { label: string; start: number; end: number }[] = [];
  let offset = 0;
  const push = (text: string) => {
    lines.push(text);
    offset += text.length + 1;
  };
  docs.forEach(({ doc }, i) => push(`import type { I${doc.kind} as T${i} } from '${kindOf(doc).module}';`));
  docs.forEach(({ label, doc }, i) => {
    const start = offset;
    push(`export const d${i}: T${i} = ${JSON.stringify(doc)};`);
    spans.push({ label, start, end: offset });
  });
  const source = lines.join('\n');

  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    name === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const label = d.file?.fileName === file ? spans.find((s) => d.start! >= s.start && d.start! < s.end)?.label : d.file?.fileName;
    return `${label ?? '(no file)'}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}
