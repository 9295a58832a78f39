// Builds the preview: the real component, lightning-base-components and mocks for what only
// Salesforce provides (Apex, Lightning Data Service, toasts).
import lwc from '@lwc/rollup-plugin';
import json from '@rollup/plugin-json';
import replace from '@rollup/plugin-replace';
import resolve from '@rollup/plugin-node-resolve';

const APEX = 'mocks/apex_';
const METHODS = ['check', 'currentGovernance', 'preparation'];
const UNUSED = ['submit', 'acceptCounter', 'review', 'saveReview', 'savePreparation'];

export default {
    input: 'src/main.js',
    output: { file: 'dist/main.js', format: 'iife', inlineDynamicImports: true },
    plugins: [
        replace({
            preventAssignment: true,
            'process.env.NODE_ENV': JSON.stringify('production'),
            // lightning-base-components asks whether it renders on a server.
            'import.meta.env.SSR': 'false'
        }),
        json(),
        lwc({
            rootDir: process.cwd(),
            exclude: ['**/*.json'],
            modules: [
                { dir: 'src/modules' },
                { name: 'lightning/uiRecordApi', path: 'mocks/uiRecordApi.js' },
                { name: 'lightning/platformShowToastEvent', path: 'mocks/platformShowToastEvent.js' },
                { name: 'lightning/combobox', path: 'mocks/combobox/combobox.js' },
                ...METHODS.map((m) => ({
                    name: `@salesforce/apex/DealGovernanceController.${m}`,
                    path: `${APEX}${m}.js`
                })),
                ...UNUSED.map((m) => ({
                    name: `@salesforce/apex/DealGovernanceController.${m}`,
                    path: `${APEX}unused.js`
                })),
                { npm: 'lightning-base-components' }
            ]
        }),
        resolve()
    ]
};
