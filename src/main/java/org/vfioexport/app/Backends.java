package org.vfioexport.app;

import org.vfioexport.kernel.VfioKernel;
import org.vfioexport.kernel.sim.SimKernel;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.Map;

/**
 * Builds the kernel backend the configuration names. The Linux backend is looked up by name, so a build without
 * it still runs the simulated one; either way an unusable backend is refused with its own reason.
 */
public final class Backends {
    static final String LINUX_CLASS = "org.vfioexport.kernel.linux.LinuxKernel";

    private Backends() {}

    public static VfioKernel create(String name, Config config) throws StartupException {
        VfioKernel k = switch (name) {
            case "sim" -> SimKernel.fromConfig(config.asMap());
            case "linux" -> linux(config);
            default -> throw new StartupException("unknown backend '" + name + "': use sim or linux");
        };
        if (!k.isAvailable()) {
            k.close();
            throw new StartupException("the " + name + " backend is not available here: " + k.unavailabilityCause());
        }
        return k;
    }

    private static VfioKernel linux(Config config) throws StartupException {
        Class<?> c;
        try {
            c = Class.forName(LINUX_CLASS);
        } catch (ClassNotFoundException e) {
            throw new StartupException("the linux backend is not part of this build (" + LINUX_CLASS + " missing)");
        }
        try {
            for (Method m : c.getMethods()) {
                if (m.getName().equals("fromConfig") && m.getParameterCount() == 1
                        && m.getParameterTypes()[0].isAssignableFrom(Map.class)) {
                    return (VfioKernel) m.invoke(null, config.asMap());
                }
            }
            return (VfioKernel) c.getConstructor().newInstance();
        } catch (InvocationTargetException e) {
            throw new StartupException("the linux backend failed to start: " + e.getCause(), e.getCause());
        } catch (ReflectiveOperationException | ClassCastException e) {
            throw new StartupException("the linux backend cannot be constructed: " + e, e);
        }
    }
}
