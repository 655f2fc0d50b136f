// The test PKI lives with the local servers (the load driver's --secure servers use it too).
export { makeTestPki, natsTlsBlock, type TestPki } from '@at-orchestrator/local-servers';
