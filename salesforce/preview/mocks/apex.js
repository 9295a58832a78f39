// The service's answers, from the package's fixtures (the same the Jest and Apex tests use).
import NEEDS_APPROVAL from '../../force-app/main/default/staticresources/GovFixture_CheckNeedsApproval.json';
import AUTO_APPROVED from '../../force-app/main/default/staticresources/GovFixture_CheckAutoApproved.json';
import DEAL from '../../force-app/main/default/staticresources/GovFixture_Deal.json';
import APPROVALS from '../../force-app/main/default/staticresources/GovFixture_ApprovalsCountered.json';
import PREPARATION from '../../force-app/main/default/staticresources/GovFixture_Preparation.json';

export const check = () => Promise.resolve(JSON.stringify(AUTO_APPROVED));
export const currentGovernance = () =>
    Promise.resolve(
        JSON.stringify({ deal: DEAL, check: { result: NEEDS_APPROVAL }, requests: APPROVALS })
    );
export const preparation = () => Promise.resolve(JSON.stringify(PREPARATION));
export const unused = () => Promise.resolve('null');
