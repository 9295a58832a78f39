// Copies the component and the bar it draws with into the preview's module tree (LWC OSS resolves
// `c/dealGovernance` from src/modules/c/), without their Jest tests, and SLDS's stylesheet next
// to the bundle.
import { cpSync, mkdirSync, rmSync } from 'node:fs';

rmSync('src/modules', { recursive: true, force: true });
for (const name of ['dealGovernance', 'dealGovernanceBar', 'dealGovernanceProblem']) {
    cpSync(`../force-app/main/default/lwc/${name}`, `src/modules/c/${name}`, {
        recursive: true,
        filter: (path) => !path.includes('__tests__')
    });
}
mkdirSync('dist', { recursive: true });
cpSync(
    'node_modules/@salesforce-ux/design-system/assets/styles/salesforce-lightning-design-system.min.css',
    'dist/slds.css'
);
