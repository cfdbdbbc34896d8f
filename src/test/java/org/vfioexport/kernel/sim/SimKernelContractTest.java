package org.vfioexport.kernel.sim;

import org.vfioexport.kernel.VfioKernel;
import org.vfioexport.kernel.contract.KernelContract;

/**
 * The contract against the simulated kernel, configured with the VM lab's devices and the semantics of the
 * kernel the lab runs (7.2, the 7.1 generation): the same corpus the real kernel passes in the VM.
 */
class SimKernelContractTest extends KernelContract {
    @Override
    protected VfioKernel createKernel() throws Exception {
        return SimKernel.fromConfigFile(labDevicesFile(), SimSemantics.V7_1);
    }

    /** The simulator answers a second open as the cdev path does (EINVAL at the bind). */
    @Override
    protected OpenPath openPath() {
        return OpenPath.CDEV;
    }
}
