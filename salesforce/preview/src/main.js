import '@lwc/synthetic-shadow';
import { createElement } from 'lwc';
import DealGovernance from 'c/dealGovernance';

const element = createElement('c-deal-governance', { is: DealGovernance });
element.recordId = '0065g00000Gov01AAB';
document.getElementById('root').appendChild(element);
